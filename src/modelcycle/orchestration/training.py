"""The training step of the daily job: the same recipe as `modelcycle train`, plus the gate.

The gate (`training/gate.py`) compares the new version with the champion scored on the new
version's held-out rows; a version worse by more than `MODELCYCLE_GATE_MARGIN` fails the check.
The check does not block: a refused challenger blocks only its own promotion (its release request
records the failed gate), while the champion that keeps serving is scored, evaluated and watched
that day as every day.

The core is imported when the step runs, not when the code location loads: loading it must not
pay for MLflow and LightGBM.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
from modelcycle.training.gate import GateResult, judge

if TYPE_CHECKING:
    from modelcycle.monitoring.challenge import ChampionOnRows
    from modelcycle.training.dataset import TrainingSet


def gate_check(key: dg.AssetKey, result: GateResult) -> dg.AssetCheckResult:
    """The gate's verdict as the Dagster check of the model's asset (the UI shows it)."""
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=GATE_CHECK,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.reason,
        metadata={"champion_version": result.champion_version or "-"},
    )


def train_day(
    context: dg.AssetExecutionContext, modelcycle: ModelcycleResource, day: date
) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
    from modelcycle.monitoring.challenge import champion_on_rows
    from modelcycle.store.training_runs import recorded_training
    from modelcycle.training.recipe import train_window

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
        trained = train_window(settings, lake=modelcycle.lake(), raw=modelcycle.raw(), end=day)
    for version in trained.versions:
        key = keys[version.model_name]
        champion = champion_on_rows(settings, version.model_name, version.version, trained.data)
        result = judge(
            version.model_name,
            version.version,
            version.metrics,
            champion.metrics,
            champion.version,
            settings.gate_margin,
            metrics=settings.gated_metrics,
        )
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "registered_model": version.model_name,
                "version": version.version,
                "aliases": ", ".join(version.aliases),
                "run_id": version.run_id,
                "mlflow_run": dg.MetadataValue.url(
                    mlflow_run_url(settings, trained.tracking.experiment_id, version.run_id)
                ),
                "onnx_sha256": version.onnx_sha256,
                "onnx_max_abs_difference": version.onnx_max_abs_difference,
                "gate": dg.MetadataValue.json(result.as_dict()),
                **{m: v for m, v in version.metrics.items() if not math.isnan(v)},
                "training_days": len(trained.data.days),
                "customers_gate": dg.MetadataValue.json(
                    customers_verdict(
                        modelcycle, version.model_name, version.version, champion, trained.data
                    )
                ),
            },
        )
        yield gate_check(key, result)


def customers_verdict(
    modelcycle: ModelcycleResource,
    name: str,
    version: str,
    champion: ChampionOnRows,
    data: TrainingSet,
) -> dict[str, Any]:
    """The customers gate on the held-out rows: each row's device mapped to its customer by the
    fleet register, champion and challenger predictions compared per customer."""
    from modelcycle.errors import DataNotFoundError, InvalidInputError
    from modelcycle.lake.fleet import read_fleet
    from modelcycle.monitoring.challenge import challenger_predictions
    from modelcycle.release.customers import customers_gate
    from modelcycle.release.rules import GateResult as ReleaseGate

    settings = modelcycle.settings()
    margin = settings.gate_customer_margin
    if champion.predictions is None:
        return customers_gate([], [], None, [], margin=margin).to_dict()
    ours = challenger_predictions(settings, name, version, data)
    if ours is None:
        detail = f"v{version} is not {name}@challenger: its held-out rows were not scored"
        return ReleaseGate("customers", False, detail).to_dict()
    try:
        fleet = read_fleet(modelcycle.raw())
    except (DataNotFoundError, InvalidInputError) as error:  # the gate fails; training stands
        return ReleaseGate("customers", False, f"customers unknown: {error}").to_dict()
    devices, owners = fleet.column("device_id").to_pylist(), fleet.column("customer_id").to_pylist()
    owner = dict(zip(devices, owners, strict=True))
    customers = [owner.get(device) or "(not in devices.csv)" for device in data.test_devices]
    gate = customers_gate(
        customers,
        data.y_test.tolist(),
        champion.predictions.tolist(),
        ours.tolist(),
        margin=margin,
    )
    return gate.to_dict()
