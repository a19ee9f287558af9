"""The two models: a LightGBM fault classifier and a spread z-score anomaly detector.

Both expose the same small surface (`fit`, native scores, ONNX export, metrics), so training,
registration and serving treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
from numpy.typing import NDArray
from onnxmltools.convert.common.data_types import FloatTensorType

from modelcycle.errors import ModelValidationError
from modelcycle.registry.contract import INPUT_NAME
from modelcycle.training.metrics import binary_metrics
from modelcycle.training.onnx_export import ONNX_OPSET, expose_score
from modelcycle.training.spread import SpreadZScore, spread_onnx


class WindowModel(Protocol):
    kind: str
    params: dict[str, Any]
    parity_tolerance: float
    decision_threshold: float

    def fit(self, x: NDArray[np.float32], y: NDArray[np.int_]) -> None: ...
    def native_scores(self, x: NDArray[np.float32]) -> NDArray[np.float64]: ...
    def to_onnx(self, n_features: int) -> onnx.ModelProto: ...
    def native(self) -> Any: ...


def evaluate(model: WindowModel, x: NDArray[np.float32], y: NDArray[np.int_]) -> dict[str, float]:
    scores = model.native_scores(x)
    predicted = (scores >= model.decision_threshold).astype(np.int_)
    return binary_metrics(y, scores, predicted)


@dataclass
class FaultClassifier:
    """Probability that a device-window is in a fault episode."""

    seed: int = 42
    kind: str = "classifier"
    # ONNX keeps split thresholds and leaf sums in float32, LightGBM in float64: most rows are
    # ~1e-4 apart, but a value lying between a threshold and its float32 rounding takes the other
    # branch (seen: 0.0016-0.0027 on small fleets). A broken export (feature order, missing
    # sigmoid) is off by 0.1 or more, so 1e-2 still refuses it.
    parity_tolerance: float = 1e-2
    decision_threshold: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)
    _model: lgb.LGBMClassifier | None = None

    def __post_init__(self) -> None:
        self.params = {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.5,
            "reg_lambda": 1.0,
            "random_state": self.seed,
            **self.params,
        }

    def fit(self, x: NDArray[np.float32], y: NDArray[np.int_]) -> None:
        if len(np.unique(y)) < 2:
            raise ModelValidationError(
                "the training window has no confirmed fault (or only faults): "
                "the classifier needs both classes; widen --window-days"
            )
        self._model = lgb.LGBMClassifier(**self.params, n_jobs=2, verbose=-1)
        self._model.fit(x, y)

    def native(self) -> lgb.LGBMClassifier:
        if self._model is None:
            raise RuntimeError("fit the classifier first")
        return self._model

    def native_scores(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        probabilities = np.asarray(self.native().predict_proba(x), dtype=np.float64)
        return probabilities[:, 1]

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        model: onnx.ModelProto = onnxmltools.convert_lightgbm(
            self.native(),
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            zipmap=False,
            target_opset=ONNX_OPSET,
        )
        expose_score(model, "probabilities", column=1, negate=False)
        return model


@dataclass
class AnomalyDetector:
    """How unusual a device-window is: the largest robust z-score of a sensor's hourly spread
    (`spread.py` says why); trained without labels (faults are only used to score it)."""

    seed: int = 42
    kind: str = "anomaly"
    parity_tolerance: float = 1e-3
    decision_threshold: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    _model: SpreadZScore | None = None

    def __post_init__(self) -> None:
        # z_cut 8: measured on unseen days of a 150-device fleet (docs/monitoring.md), 6 fired on
        # healthy device-days (precision 0.63), 12 missed half of the anomalous ones.
        self.params = {"detector": "spread-max-robust-z", "z_cut": 8.0, **self.params}

    def fit(self, x: NDArray[np.float32], y: NDArray[np.int_]) -> None:
        self._model = SpreadZScore(z_cut=float(self.params["z_cut"])).fit(x)

    def native(self) -> SpreadZScore:
        if self._model is None:
            raise RuntimeError("fit the detector first")
        return self._model

    def native_scores(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Above 0: some sensor's spread is more than `z_cut` robust deviations from usual."""
        return self.native().score(x).astype(np.float64)

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        return spread_onnx(self.native(), n_features)
