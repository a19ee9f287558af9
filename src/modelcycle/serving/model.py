"""A verified model version in memory: an ONNX Runtime session and what the API says about it.

No pickle on the serving path: only ONNX bytes whose sha256 matched the hash recorded at
registration ever reach `InferenceSession`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from modelcycle.errors import ModelValidationError
from modelcycle.features.windows import FeatureSpec
from modelcycle.registry.contract import FEATURES_METADATA_KEY, INPUT_NAME, SCORE_OUTPUT


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
