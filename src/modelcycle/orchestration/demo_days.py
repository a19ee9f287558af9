"""The demo's days: a run of the daily job per day, in this process, recorded in Dagster's
instance (so `modelcycle up` shows the runs afterwards). The CLI shows the outcomes."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import date

import dagster as dg

from modelcycle.orchestration.definitions import build_definitions
from modelcycle.orchestration.instance import prepare_instance
from modelcycle.orchestration.local import LAKE_ONLY, DayOutcome, run_day
from modelcycle.settings import Settings


def run_days(
    settings: Settings,
    days: list[date],
    *,
    warmup_days: int,
    on_outcome: Callable[[DayOutcome, bool], None],
) -> list[DayOutcome]:
    """Each day through the daily job; the first `warmup_days` only to the lake (the first
    training needs a few days of data). `on_outcome(outcome, lake_only)` hears each day."""
    home, _workspace = prepare_instance(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's beta/preview notices are not for the user
        defs = build_definitions(settings.model_copy(update={"orchestration_start": days[0]}))
    outcomes = []
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        redirect_stdout(sys.stderr),  # MLflow prints progress on stdout
    ):
        for index, day in enumerate(days):
            assets = LAKE_ONLY if index < warmup_days else None
            outcome = run_day(defs, instance, day, assets)
            outcomes.append(outcome)
            on_outcome(outcome, assets is not None)
    return outcomes
