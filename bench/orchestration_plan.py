"""What bench/orchestration.py measures: the day, the job, the core functions timed inside each
Dagster step, the CLI command each step pairs with, and the targets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

START = date(2026, 3, 2)
SEED = 7
TARGET_TOTAL_SECONDS = 600.0
TARGET_OVERHEAD = 0.10
JOB = "daily_lifecycle"


# The core functions the Dagster steps call, timed inside the run: (module, attribute, label).
# A wrapper replaces the module attribute the step looks up at call time; the modules are imported
# before the run, so import time is not counted in any step.
CORE_FUNCTIONS = [
    ("modelcycle.orchestration.assets", "ingest_day", "ingest"),
    ("modelcycle.orchestration.assets", "null_shares", "data_quality"),
    ("modelcycle.orchestration.assets", "judge_partition", "data_quality"),
    ("modelcycle.orchestration.assets", "build_day_features", "features"),
    ("modelcycle.training.recipe", "train_window", "train"),
    ("modelcycle.monitoring.challenge", "champion_on_rows", "metric_gate"),
    ("modelcycle.monitoring.daily", "score_day", "score"),
    ("modelcycle.monitoring.daily", "evaluate_day", "evaluate"),
    ("modelcycle.alerting.facts", "check_alerts", "alerts"),
]


# Dagster step key → (labels of its core work, labels of its checks).
STEP_WORK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "readings": (("ingest",), ("data_quality",)),
    "features": (("features",), ()),
    "models": (("train",), ("metric_gate",)),
    "scores": (("score",), ()),
    "evaluation": (("evaluate",), ()),
    "alerts": (("alerts",), ()),
}


# CLI command (step name) → the Dagster steps that do its work.
PAIRS: list[tuple[str, tuple[str, ...]]] = [
    ("ingest", ("readings",)),
    ("train", ("features", "models")),
    ("monitor daily", ("scores", "evaluation", "alerts")),
]


STEP_LABELS = {
    "readings": "`readings` (ingest + `data_quality` check)",
    "features": "`features`",
    "models": "`models` (train + `metric_gate` ×2)",
    "scores": "`scores`",
    "evaluation": "`evaluation`",
    "alerts": "`alerts`",
}


@dataclass(frozen=True)
class Plan:
    """The days of the bench: the measured day and the windows around it."""

    window: int

    @property
    def day(self) -> date:
        """The measured day: the champion's window (from START) lies before it."""
        return START + timedelta(days=self.window)

    @property
    def simulated(self) -> int:
        # the champion's window, the measured day, and one day for the ledger
        return self.window + 2

    @property
    def ingested(self) -> list[date]:
        return [START + timedelta(days=i) for i in range(self.window)]


def default_window() -> int:
    from modelcycle.settings import Settings

    value = Settings.model_fields["training_window_days"].default
    assert isinstance(value, int)
    return value
