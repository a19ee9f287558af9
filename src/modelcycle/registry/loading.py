"""Opening a registered ONNX version, verified: resolve an alias, fetch, check the hash, open it.

Serving, monitoring and the training gate all load versions this way, so it lives beside the
registry and needs neither the API nor monitoring. No pickle on this path: only ONNX bytes whose
sha256 matched the hash recorded at registration ever reach `InferenceSession`. MLflow is imported
on first use, not at import: importing it takes seconds, and an API with a cached verified model
should be answering by then.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from modelcycle.errors import DataNotFoundError, ModelValidationError, RegistryError
from modelcycle.features.windows import FeatureSpec
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.registry.ages import trained_at_of
from modelcycle.registry.contract import (
    FEATURES_METADATA_KEY,
    INPUT_NAME,
    ONNX_ARTIFACT,
    SCORE_OUTPUT,
    SHA256_TAG,
    TRAINED_AT_TAG,
)
from modelcycle.registry.uris import NOT_FOUND_CODES, is_tracking_server, rest_readable
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PREFLIGHT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class VersionRecord:
    """What the registry (or the local cache) says a served version is."""

    name: str
    version: str
    alias: str
    run_id: str
    sha256: str
    trained_at: datetime


@dataclass(frozen=True)
class LoadedModel:
    """One immutable served version; a swap replaces the whole object, never mutates it."""

    record: VersionRecord
    session: ort.InferenceSession
    features: tuple[str, ...]
    spec: FeatureSpec
    loaded_at: datetime
    source: str

    @property
    def n_features(self) -> int:
        return len(self.features)

    def predict(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Scores for a [rows, n_features] float32 matrix (NaN is a missing value)."""
        (scores,) = self.session.run([SCORE_OUTPUT], {INPUT_NAME: rows})
        return np.asarray(scores, dtype=np.float32)


def embedded_feature_names(session: ort.InferenceSession) -> list[str]:
    """The column order a model was exported with; empty for a model exported without it."""
    text = session.get_modelmeta().custom_metadata_map.get(FEATURES_METADATA_KEY)
    return list(json.loads(text)) if text else []


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_artifact(record: VersionRecord, data: bytes) -> None:
    """Refuse bytes that are not the artifact registered for this version."""
    actual = sha256_of(data)
    if actual != record.sha256:
        raise ModelValidationError(
            f"{record.name} v{record.version}: artifact sha256 {actual[:12]}… does not match "
            f"the registered {record.sha256[:12]}…; refusing it"
        )


def _session_options() -> ort.SessionOptions:
    # One thread per inference: the API answers many small requests at once, and a thread pool
    # per call costs more than it gains on rows this small.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def load_verified_model(
    record: VersionRecord, data: bytes, *, source: str, now: datetime
) -> LoadedModel:
    """Verify, open and warm a model, so the first request after a swap is as fast as any."""
    verify_artifact(record, data)
    try:
        session = ort.InferenceSession(
            data, sess_options=_session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # ONNX Runtime raises its own untyped errors for a broken graph
        raise ModelValidationError(
            f"{record.name} v{record.version}: ONNX Runtime cannot load it: {error}"
        ) from error
    features = embedded_feature_names(session)
    if not features:
        raise ModelValidationError(
            f"{record.name} v{record.version} has no embedded feature names; retrain it"
        )
    try:
        spec = FeatureSpec.from_feature_names(features)
    except ValueError as error:
        raise ModelValidationError(f"{record.name} v{record.version}: {error}") from error
    model = LoadedModel(
        record=record,
        session=session,
        features=tuple(features),
        spec=spec,
        loaded_at=now,
        source=source,
    )
    warm = model.predict(np.zeros((1, model.n_features), dtype=np.float32))
    if warm.shape != (1,) or not np.isfinite(warm).all():
        raise ModelValidationError(
            f"{record.name} v{record.version}: a warm-up prediction gave {warm!r}, not one score"
        )
    return model


def _record(
    name: str, alias: str, version: str, run_id: str, tags: dict[str, str], created_ms: int
) -> VersionRecord:
    sha256 = tags.get(SHA256_TAG)
    if not sha256:
        raise ModelValidationError(
            f"{name} v{version} has no recorded {SHA256_TAG}; refusing to serve it"
        )
    return VersionRecord(
        name=name,
        version=version,
        alias=alias,
        run_id=run_id,
        sha256=sha256,
        trained_at=trained_at_of(tags.get(TRAINED_AT_TAG), created_ms),
    )


class VersionSource(Protocol):
    def resolve(self, name: str, alias: str) -> VersionRecord: ...

    def fetch(self, record: VersionRecord) -> bytes: ...


class RegistrySource:
    """Resolves `name@alias` and downloads the version's ONNX artifact."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        self._client: MlflowClient | None = None
        # A served registry answers the alias poll over REST; MLflow is imported by a download.
        self._rest = rest_readable(self.tracking_uri, settings.registry_uri)

    def _connect(self) -> MlflowClient:
        with FIRST_USE_IMPORTS:
            from modelcycle.registry.connection import check_server, registry_client

        # MLflow's client retries an unreachable server for a long time; a poll must fail fast.
        if is_tracking_server(self.tracking_uri):
            check_server(self.tracking_uri, timeout=PREFLIGHT_TIMEOUT_SECONDS)
        if self._client is None:
            # On a database URI (the embedded store) the client imports SQLAlchemy, as the API's
            # store pollers do in their own threads: under the lock, or one sees half a module.
            with FIRST_USE_IMPORTS:
                self._client, self.tracking_uri = registry_client(self.settings)
        return self._client

    def resolve(self, name: str, alias: str) -> VersionRecord:
        if self._rest:
            with FIRST_USE_IMPORTS:
                from modelcycle.registry.rest import version_by_alias

            found = version_by_alias(
                self.tracking_uri, name, alias, timeout=(PREFLIGHT_TIMEOUT_SECONDS, 30.0)
            )
            return _record(
                name, alias, found.version, found.run_id, found.tags, found.creation_timestamp_ms
            )
        with FIRST_USE_IMPORTS:
            from mlflow.exceptions import MlflowException

            from modelcycle.registry.connection import first_line

        client = self._connect()
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if error.error_code in NOT_FOUND_CODES:
                raise DataNotFoundError(f"no version of {name} has the alias {alias!r}") from error
            raise RegistryError(
                f"registry lookup of {name}@{alias} failed: {first_line(error)}"
            ) from error
        return _record(
            name,
            alias,
            str(version.version),
            version.run_id or "",
            version.tags or {},
            int(version.creation_timestamp or 0),
        )

    def fetch(self, record: VersionRecord) -> bytes:
        with FIRST_USE_IMPORTS:
            import mlflow.artifacts

            from modelcycle.registry.connection import first_line

        client = self._connect()
        try:
            location = client.get_model_version_download_uri(record.name, record.version)
            with tempfile.TemporaryDirectory(prefix="modelcycle-serving-") as scratch:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location.rstrip('/')}/{ONNX_ARTIFACT}",
                    dst_path=scratch,
                    tracking_uri=self.tracking_uri,
                )
                return Path(local).read_bytes()
        except Exception as error:  # MLflow, boto and fsspec each raise their own error types
            raise RegistryError(
                f"downloading {record.name} v{record.version} failed: {first_line(error)}"
            ) from error
