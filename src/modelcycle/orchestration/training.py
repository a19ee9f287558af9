"""The training step of the daily job: the same training as `modelcycle train`, plus the gate.

The gate scores the champion on the new version's held-out rows and compares the two on the
metrics that matter for rare faults; a version worse by more than `MODELCYCLE_GATE_MARGIN` fails
the blocking check, so the day's run stops before anything scores with it (it stays a
`challenger`; promotion is a person's decision).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from modelcycle.orchestration.keys import (
    CLASSIFIER_KEY,
    DETECTOR_KEY,
    GATE_CHECK,
    mlflow_run_url,
    retried_only_if_transient,
)
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.settings import Settings

if TYPE_CHECKING:
    # Under TYPE_CHECKING: loading the code location must not pay for MLflow.
    from modelcycle.training.dataset import TrainingSet
    from modelcycle.training.runner import TrainedVersion

GATED_METRICS = ("accuracy", "pr_auc")


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    description: str
    champion_version: str | None


def gate(
    new: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    margin: float,
) -> GateVerdict:
    """Pass unless a gated metric is worse than the champion's by more than `margin`."""
    if champion is None:
        reason = "no comparable champion" if champion_version else "no champion yet"
        return GateVerdict(True, reason, champion_version)
    worse = []
    for metric in GATED_METRICS:
        ours, theirs = new.get(metric, math.nan), champion.get(metric, math.nan)
        if math.isnan(theirs):
            continue
        if math.isnan(ours) or ours < theirs - margin:
            worse.append(
                f"{metric} {ours:.3f} < champion v{champion_version}'s {theirs:.3f} − {margin}"
            )
    if worse:
        return GateVerdict(False, "; ".join(worse), champion_version)
    return GateVerdict(
        True, f"not worse than champion v{champion_version} by more than {margin}", champion_version
    )


def _champion_metrics(
    settings: Settings, name: str, trained: TrainedVersion, data: TrainingSet
) -> tuple[dict[str, float] | None, str | None]:
    """The champion's metrics on the new version's own held-out rows: the same rows for both.

    Each run's logged metrics come from its own test split; comparing those would compare two
    different exams. The champion's ONNX artifact (sha256-checked) scores this training's test rows.
    """
    from modelcycle.errors import DataNotFoundError
    from modelcycle.monitoring.champions import open_version
    from modelcycle.monitoring.evaluation import metrics_for
    from modelcycle.monitoring.scoring import predict_all
    from modelcycle.registry.connection import registry_client
    from modelcycle.registry.loading import RegistrySource
    from modelcycle.registry.versions import CHAMPION

    client, _ = registry_client(settings)
    try:
        champion = open_version(RegistrySource(settings), client, name, CHAMPION)
    except DataNotFoundError:
        return None, None
    if champion.version == trained.version:
        return None, champion.version
    if list(champion.model.features) != data.feature_names:
        return None, champion.version  # other features: not comparable on these rows
    scores = predict_all(champion, data.x_test)
    result = metrics_for(data.y_test, scores, champion.decision_threshold)
    return result.metrics, champion.version


def train_day(
    context: dg.AssetExecutionContext, modelcycle: ModelcycleResource, day: date
) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
    from modelcycle.registry.connection import connect_tracking
    from modelcycle.store.training_runs import recorded_training
    from modelcycle.training.dataset import build_training_set
    from modelcycle.training.models import AnomalyDetector, FaultClassifier
    from modelcycle.training.runner import train_models

    settings = modelcycle.settings()
    keys = {
        settings.classifier_model_name: CLASSIFIER_KEY,
        settings.anomaly_model_name: DETECTOR_KEY,
    }
    with (
        retried_only_if_transient(),
        modelcycle.monitoring_store() as store,
        recorded_training(store, day, trigger="dagster"),
    ):
        tracking = connect_tracking(settings)
        data = build_training_set(
            lake=modelcycle.lake(),
            raw=modelcycle.raw(),
            end=day,
            window_days=settings.training_window_days,
        )
        with redirect_stdout(sys.stderr):  # MLflow prints progress on stdout
            trained = train_models(
                tracking=tracking,
                data=data,
                end=day,
                models=[
                    (settings.classifier_model_name, FaultClassifier()),
                    (settings.anomaly_model_name, AnomalyDetector()),
                ],
            )
    for version in trained:
        key = keys[version.model_name]
        champion, champion_version = _champion_metrics(settings, version.model_name, version, data)
        verdict = gate(version.metrics, champion, champion_version, settings.gate_margin)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "registered_model": version.model_name,
                "version": version.version,
                "aliases": ", ".join(version.aliases),
                "run_id": version.run_id,
                "mlflow_run": dg.MetadataValue.url(
                    mlflow_run_url(settings, tracking.experiment_id, version.run_id)
                ),
                "onnx_sha256": version.onnx_sha256,
                **{m: v for m, v in version.metrics.items() if not math.isnan(v)},
                "training_days": len(data.days),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=GATE_CHECK,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.description,
            metadata={"champion_version": verdict.champion_version or "-"},
        )
