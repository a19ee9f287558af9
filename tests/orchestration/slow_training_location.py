"""A code location for the SLA test: modelcycle's own definitions, with training that hangs.

The daemon's run worker imports this module, so the hang is in the process Dagster's run
monitoring has to stop. Everything else (job, tags, sensors, alerting) is the shipped code.
"""

import time
from typing import Any

import modelcycle.training.recipe
from modelcycle.orchestration.definitions import build_definitions
from modelcycle.settings import Settings

HANG_SECONDS = 600


def _hanging_training(*args: Any, **kwargs: Any) -> Any:
    time.sleep(HANG_SECONDS)
    raise AssertionError("the run should have been stopped at its maximum run time")


modelcycle.training.recipe.train_window = _hanging_training

defs = build_definitions(Settings())
