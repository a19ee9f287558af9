"""Train both models on a window of days: the one recipe behind `modelcycle train`, the daily
Dagster job, the test fixtures and the benchmarks, so that they cannot drift apart.

Callers differ only in how they show progress: `on_day` hears each day whose features are
ready, and `while_training` may wrap the fit-and-register phase (a spinner, a log line).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, redirect_stdout
from dataclasses import dataclass
from datetime import date

from modelcycle.registry.connection import Tracking, connect_tracking
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore
from modelcycle.training.dataset import TrainingSet, build_training_set
from modelcycle.training.models import AnomalyDetector, FaultClassifier, WindowModel
from modelcycle.training.runner import TrainedVersion, train_models

DEFAULT_SEED = 42


@dataclass(frozen=True)
class TrainedWindow:
    """What one training produced: the registered versions, the rows they were judged on (the
    gate scores the champion on the same test rows) and the MLflow they were logged to."""

    versions: list[TrainedVersion]
    data: TrainingSet
    tracking: Tracking


def window_models(settings: Settings, seed: int = DEFAULT_SEED) -> list[tuple[str, WindowModel]]:
    """The two models every training fits, under their registry names."""
    return [
        (settings.classifier_model_name, FaultClassifier(seed=seed)),
        (settings.anomaly_model_name, AnomalyDetector(seed=seed)),
    ]


def train_window(
    settings: Settings,
    *,
    lake: ObjectStore,
    raw: ObjectStore,
    end: date,
    window_days: int | None = None,
    seed: int = DEFAULT_SEED,
    on_day: Callable[[date], None] | None = None,
    while_training: Callable[[TrainingSet], AbstractContextManager[object]] | None = None,
) -> TrainedWindow:
    """Features and labels of the `window_days` ending with `end` (default: the configured
    training window), both models fitted, exported, checked and registered."""
    tracking = connect_tracking(settings)
    data = build_training_set(
        lake=lake,
        raw=raw,
        end=end,
        window_days=window_days or settings.training_window_days,
        on_day=on_day,
    )
    phase = while_training(data) if while_training is not None else nullcontext()
    # MLflow prints progress ("View run … at …") on stdout: keep stdout for the caller's answer.
    with phase, redirect_stdout(sys.stderr):
        versions = train_models(
            tracking=tracking, data=data, end=end, models=window_models(settings, seed)
        )
    return TrainedWindow(versions=versions, data=data, tracking=tracking)
