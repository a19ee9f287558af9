"""One training: both models on one training set, each an MLflow run and a registered version.

Registration is gated: the ONNX export must reproduce the native model's scores on held-out rows,
and the uploaded ONNX artifact must hash to what was exported. A refused model leaves its run in
MLflow (marked FAILED, with the reason) and no registry version.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.lightgbm
import mlflow.onnx
import mlflow.sklearn
import numpy as np
import structlog
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from modelcycle.errors import ModelValidationError, RegistryError
from modelcycle.registry.connection import Tracking, first_line
from modelcycle.registry.contract import ONNX_ARTIFACT, SCORE_OUTPUT, SHA256_TAG, TRAINED_AT_TAG
from modelcycle.registry.versions import RegisteredVersion, register_version
from modelcycle.training.dataset import TrainingSet
from modelcycle.training.models import WindowModel, evaluate
from modelcycle.training.onnx_export import check_parity, embed_feature_names

log = structlog.get_logger(__name__)

PARITY_ROWS = 2000


@dataclass(frozen=True)
class TrainedVersion:
    model_name: str
    kind: str
    run_id: str
    version: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    onnx_sha256: str
    onnx_max_abs_difference: float = float("nan")  # the parity check's evidence


def code_version() -> str:
    """The git commit of the running code, or 'unknown' outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def signature_for(feature_names: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("float", name) for name in feature_names])
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1,), SCORE_OUTPUT)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements(*packages: str) -> list[str]:
    """Pinned requirements, given rather than inferred: inference loads the model in a
    subprocess and costs tens of seconds per model."""
    return [f"{package}=={metadata.version(package)}" for package in packages]


def _log_native(model: WindowModel) -> None:
    if model.kind == "classifier":
        mlflow.lightgbm.log_model(
            model.native(),
            name="native",
            pip_requirements=_requirements("mlflow", "lightgbm", "scikit-learn", "numpy"),
        )
    else:
        # The detector is a few numbers per sensor: plain JSON, readable without any library.
        mlflow.log_dict(model.native().as_dict(), "native/spread_z_score.json")


def _verify_uploaded(model_id: str, expected_sha256: str) -> None:
    """Download the ONNX file just logged and check it is byte-for-byte what was exported."""
    location = mlflow.get_logged_model(model_id).artifact_location
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/{ONNX_ARTIFACT}", dst_path=scratch
        )
        actual = hashlib.sha256(Path(local).read_bytes()).hexdigest()
    if actual != expected_sha256:
        raise ModelValidationError(
            f"uploaded ONNX artifact hashes to {actual[:12]}…, expected {expected_sha256[:12]}…"
        )


def _run_tags(data: TrainingSet, model: WindowModel) -> dict[str, str]:
    return {
        "modelcycle.kind": model.kind,
        "modelcycle.window_start": data.window_start.isoformat(),
        "modelcycle.window_end": data.window_end.isoformat(),
        "modelcycle.data_hash": data.data_hash,
        "modelcycle.git_sha": code_version(),
    }


def _run_params(data: TrainingSet, model: WindowModel) -> dict[str, Any]:
    return {
        **model.params,
        "window_days": len(data.days),
        "window_start": data.window_start.isoformat(),
        "window_end": data.window_end.isoformat(),
        "split_at": data.split_at.isoformat(),
        "n_features": len(data.feature_names),
        "decision_threshold": model.decision_threshold,
    }


def _counts(data: TrainingSet) -> dict[str, float]:
    return {
        "rows_train": float(len(data.y_train)),
        "rows_test": float(len(data.y_test)),
        "positives_train": float(data.y_train.sum()),
        "positives_test": float(data.y_test.sum()),
    }


def train_and_register(
    *, tracking: Tracking, data: TrainingSet, model: WindowModel, model_name: str, end: date
) -> TrainedVersion:
    """Train, log, check and register one model; the run id and version are in the logs."""
    with mlflow.start_run(
        experiment_id=tracking.experiment_id, run_name=f"{model_name}-{end.isoformat()}"
    ) as run:
        bound = log.bind(run_id=run.info.run_id, model=model_name)
        mlflow.set_tags(_run_tags(data, model))
        mlflow.log_params(_run_params(data, model))
        model.fit(data.x_train, data.y_train)
        metrics = evaluate(model, data.x_test, data.y_test)
        train_metrics = evaluate(model, data.x_train, data.y_train)
        mlflow.log_metrics({**metrics, **_counts(data)})
        mlflow.log_metrics({f"train_{k}": v for k, v in train_metrics.items()})
        mlflow.log_dict({"features": data.feature_names}, "features.json")
        _log_native(model)
        exported = model.to_onnx(len(data.feature_names))
        embed_feature_names(exported, data.feature_names)
        onnx_bytes = exported.SerializeToString()
        sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        rows = data.x_test[:PARITY_ROWS]
        try:
            difference = check_parity(
                onnx_bytes, model.native_scores(rows), rows, tolerance=model.parity_tolerance
            )
        except ModelValidationError as error:
            mlflow.set_tag("modelcycle.registration", f"refused: {error}")
            mlflow.end_run(status="FAILED")
            raise
        mlflow.log_metric("onnx_max_abs_difference", difference)
        info = mlflow.onnx.log_model(
            exported,
            name="onnx",
            signature=signature_for(data.feature_names),
            pip_requirements=_requirements("mlflow", "onnx", "onnxruntime", "numpy"),
        )
        _verify_uploaded(info.model_id, sha256)
        tags = {
            **_run_tags(data, model),
            SHA256_TAG: sha256,
            TRAINED_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
            "modelcycle.score_output": SCORE_OUTPUT,
            "modelcycle.n_features": str(len(data.feature_names)),
            **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()},
        }
        registered = _register(tracking, model_name, info.model_uri, run.info.run_id, tags)
        bound.info("registered model", version=registered.version, aliases=registered.aliases)
    return TrainedVersion(
        model_name=model_name,
        kind=model.kind,
        run_id=run.info.run_id,
        version=registered.version,
        aliases=registered.aliases,
        metrics=metrics,
        onnx_sha256=sha256,
        onnx_max_abs_difference=difference,
    )


def _register(
    tracking: Tracking, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> RegisteredVersion:
    try:
        return register_version(
            tracking.client, name=name, model_uri=model_uri, run_id=run_id, tags=tags
        )
    except MlflowException as error:
        raise RegistryError(f"registering {name} failed: {first_line(error)}") from error


def train_models(
    *,
    tracking: Tracking,
    data: TrainingSet,
    end: date,
    models: list[tuple[str, WindowModel]],
) -> list[TrainedVersion]:
    """Train every model on the same training set, one MLflow run each."""
    return [
        train_and_register(tracking=tracking, data=data, model=model, model_name=name, end=end)
        for name, model in models
    ]
