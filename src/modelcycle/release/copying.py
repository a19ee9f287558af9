"""Copying a registered version from one MLflow to another, its artifact verified at both ends.

The model folder is downloaded from the source registry, its ONNX file checked against the
sha256 training recorded, logged to a new run of the target experiment (with the source run's
params and metrics), downloaded back and checked again; only then is a target version registered.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow.artifacts
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import ModelcycleError, ModelValidationError, RegistryError
from modelcycle.registry.connection import first_line
from modelcycle.registry.contract import ONNX_ARTIFACT, SHA256_TAG
from modelcycle.release.registry import REGISTRY_FAILURES
from modelcycle.release.service import Releases

_BATCH = 100  # MLflow's limit on params per log_batch call


@dataclass(frozen=True)
class Side:
    """One environment's end of a promotion: its releases (store and registry) and MLflow."""

    releases: Releases
    tracking_uri: str
    experiment_name: str
    artifact_url: str | None = None

    @property
    def environment(self) -> str:
        return self.releases.environment

    @property
    def client(self) -> MlflowClient:
        return self.releases.registry.client


def copy_version(
    source: Side,
    target: Side,
    model: str,
    version: str,
    tags: dict[str, str],
    target_tags: dict[str, str],
) -> str:
    """Artifact, run and version (tagged `target_tags`) in the target; returns the version."""
    expected = tags.get(SHA256_TAG)
    if not expected:
        raise ModelValidationError(
            f"{model} version {version} has no recorded {SHA256_TAG}; refusing to promote it"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="modelcycle-promote-") as scratch:
            location = source.client.get_model_version_download_uri(model, version)
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=scratch, tracking_uri=source.tracking_uri
                )
            )
            check_hash(local / ONNX_ARTIFACT, expected, f"{source.environment} {model} v{version}")
            run_id, artifact_source = _log_copy(source, target, model, version, local, expected)
        found = _register(target.client, model, artifact_source, run_id, target_tags)
    except ModelcycleError:
        raise
    except Exception as error:  # MLflow, boto and fsspec each raise their own error types
        raise RegistryError(
            f"copying {model} version {version} to {target.environment} failed: "
            f"{first_line(error)}; promote again to retry"
        ) from error
    return found


def _log_copy(
    source: Side, target: Side, model: str, version: str, local: Path, expected: str
) -> tuple[str, str]:
    """A finished run in the target experiment with the artifacts (under `onnx/`), the source
    run's params and metrics, and the uploaded ONNX checked against the expected hash."""
    client = target.client
    experiment = client.get_experiment_by_name(target.experiment_name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(target.experiment_name, target.artifact_url)
    )
    run = client.create_run(
        experiment_id,
        run_name=f"promote-{model}-v{version}-from-{source.environment}",
        tags={"modelcycle.promotion_of": f"{model}/{version}"},
    )
    run_id = run.info.run_id
    try:
        source_run = run_id_of(source.client, model, version)
        if source_run:
            data = source.client.get_run(source_run).data
            params = [Param(k, v) for k, v in data.params.items()]
            for start in range(0, len(params), _BATCH):
                client.log_batch(run_id, params=params[start : start + _BATCH])
            stamp = int(datetime.now(UTC).timestamp() * 1000)
            client.log_batch(
                run_id, metrics=[Metric(k, v, stamp, 0) for k, v in data.metrics.items()]
            )
        client.log_artifacts(run_id, str(local), "onnx")
        with tempfile.TemporaryDirectory(prefix="modelcycle-promote-check-") as check:
            copied = client.download_artifacts(run_id, f"onnx/{ONNX_ARTIFACT}", check)
            check_hash(Path(copied), expected, f"the copy in {target.environment}")
    except BaseException:
        _end_run(client, run_id, "FAILED")
        raise
    _end_run(client, run_id, "FINISHED")
    return run_id, f"{run.info.artifact_uri.rstrip('/')}/onnx"


def _end_run(client: MlflowClient, run_id: str, status: str) -> None:
    # MLflow prints "View run … at …" on stdout when a run ends: stdout is the CLI's answer.
    with redirect_stdout(sys.stderr):
        client.set_terminated(run_id, status)


def check_hash(path: Path, expected: str, what: str) -> None:
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ModelValidationError(
            f"{what}: artifact sha256 {actual[:12]}… does not match the registered "
            f"{expected[:12]}…; nothing was promoted"
        )


def _register(
    client: MlflowClient, model: str, source: str, run_id: str, tags: dict[str, str]
) -> str:
    try:
        client.get_registered_model(model)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(model)
    return str(client.create_model_version(model, source, run_id=run_id, tags=tags).version)


def run_id_of(client: MlflowClient, model: str, version: str) -> str:
    try:
        return client.get_model_version(model, version).run_id or ""
    except REGISTRY_FAILURES as error:
        raise RegistryError(
            f"reading {model} version {version} failed: {first_line(error)}"
        ) from error
