"""The two models: a LightGBM fault classifier and an IsolationForest anomaly detector.

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
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType as SklearnFloatTensorType
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from modelcycle.errors import ModelValidationError
from modelcycle.registry.contract import INPUT_NAME
from modelcycle.training.metrics import binary_metrics
from modelcycle.training.onnx_export import (
    ONNX_ML_OPSET,
    ONNX_OPSET,
    expose_score,
)


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
    """How unusual a device-window is; trained without labels (faults are only used to score it)."""

    seed: int = 42
    kind: str = "anomaly"
    parity_tolerance: float = 1e-3
    decision_threshold: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    _model: Pipeline | None = None

    def __post_init__(self) -> None:
        self.params = {
            "n_estimators": 100,
            "max_samples": 256,
            "contamination": 0.05,
            "random_state": self.seed,
            "imputer_strategy": "median",
            **self.params,
        }

    def fit(self, x: NDArray[np.float32], y: NDArray[np.int_]) -> None:
        forest = {k: v for k, v in self.params.items() if k != "imputer_strategy"}
        self._model = Pipeline(
            [
                ("impute", SimpleImputer(strategy=self.params["imputer_strategy"])),
                ("forest", IsolationForest(**forest, n_jobs=2)),
            ]
        )
        self._model.fit(x)

    def native(self) -> Pipeline:
        if self._model is None:
            raise RuntimeError("fit the detector first")
        return self._model

    def native_scores(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Negated decision function: above 0 is an outlier at the trained contamination."""
        return -np.asarray(self.native().decision_function(x), dtype=np.float64)

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        model: onnx.ModelProto = to_onnx(
            self.native(),
            initial_types=[(INPUT_NAME, SklearnFloatTensorType([None, n_features]))],
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": ONNX_ML_OPSET},
            # skl2onnx's graph optimisation is quadratic in nodes: 20 s for a forest, for a
            # graph that runs just as fast without it.
            model_optim=False,
        )
        expose_score(model, "scores", column=None, negate=True)
        return model
