"""The anomaly detector's model: the largest robust z-score of a sensor's hourly spread.

Why spread (the window's `std`) and not every feature: a device's level (mean, min, max) differs
from its neighbours' by its own offset and load, so fleet-wide level features call healthy but
unusual devices anomalous every day; the hourly spread does not depend on the offset. A spike
lifts it several-fold, a stuck sensor drops it to zero, vibration multiplies it, a drift's ramp
and a hot hour's onset raise it. Why the maximum over sensors: an anomaly touches one to a few
sensors out of a hundred, and an average or a random-split forest dilutes it (the IsolationForest
this replaces fired on 1 in 5 device-days with a precision of 0.2, docs/monitoring.md).

The centre and scale are the median and the MAD (x 1.4826) of each sensor's spread over the
training windows: robust, so the faults and anomalies inside those windows do not inflate them.
Score = max |z| - `z_cut`, so the decision threshold is 0 as for every detector before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper

from modelcycle.errors import ModelValidationError
from modelcycle.features.windows import statistic_columns
from modelcycle.registry.contract import INPUT_NAME, SCORE_OUTPUT
from modelcycle.training.onnx_export import ONNX_OPSET

MAD_TO_STD = 1.4826  # a normal distribution's MAD times this is its standard deviation
MIN_SCALE = 1e-6


class SpreadZScore:
    """Fitted centre and scale of the spread columns; scores are max |z| - z_cut per row."""

    def __init__(self, z_cut: float = 8.0, statistic: str = "std") -> None:
        self.z_cut = z_cut
        self.statistic = statistic
        self.columns_: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.center_: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self.scale_: NDArray[np.float32] = np.zeros(0, dtype=np.float32)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"z_cut": self.z_cut, "statistic": self.statistic}

    def fit(self, x: NDArray[np.float32]) -> SpreadZScore:
        try:
            columns = statistic_columns(x.shape[1], self.statistic)
        except ValueError as error:
            message = f"the anomaly detector cannot read these features: {error}"
            raise ModelValidationError(message) from error
        spread = x[:, columns].astype(np.float64)
        if not np.isfinite(spread).any(axis=0).all():
            raise ModelValidationError("a sensor has no spread value in the whole training window")
        center = np.nanmedian(spread, axis=0)
        mad = np.nanmedian(np.abs(spread - center), axis=0)
        self.columns_ = np.asarray(columns, dtype=np.int64)
        self.center_ = center.astype(np.float32)
        self.scale_ = np.maximum(mad * MAD_TO_STD, MIN_SCALE).astype(np.float32)
        return self

    def as_dict(self) -> dict[str, Any]:
        """What the fit learned, per sensor column, for the run's `native/` artifact."""
        return {
            **self.get_params(),
            "columns": self.columns_.tolist(),
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
        }

    def z_scores(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """|z| per spread column; a missing value is at the centre (z = 0), never an anomaly."""
        spread = x[:, self.columns_].astype(np.float32)
        z = np.abs((spread - self.center_) / self.scale_)
        return np.where(np.isnan(z), np.float32(0), z).astype(np.float32)

    def score(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        largest = self.z_scores(x).max(axis=1)
        return np.asarray(largest - np.float32(self.z_cut), dtype=np.float32)


def spread_onnx(model: SpreadZScore, n_features: int) -> onnx.ModelProto:
    """The same arithmetic as `SpreadZScore.score`, float32 throughout, as an ONNX graph."""
    width = len(model.columns_)
    initializers = [
        helper.make_tensor("columns", onnx.TensorProto.INT64, [width], model.columns_),
        helper.make_tensor("center", onnx.TensorProto.FLOAT, [width], model.center_),
        helper.make_tensor("scale", onnx.TensorProto.FLOAT, [width], model.scale_),
        helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("cut", onnx.TensorProto.FLOAT, [], [model.z_cut]),
    ]
    nodes = [
        helper.make_node("Gather", [INPUT_NAME, "columns"], ["spread"], axis=1),
        helper.make_node("Sub", ["spread", "center"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["signed_z"]),
        helper.make_node("Abs", ["signed_z"], ["abs_z"]),
        helper.make_node("IsNaN", ["abs_z"], ["missing"]),
        helper.make_node("Where", ["missing", "zero", "abs_z"], ["z"]),
        helper.make_node("ReduceMax", ["z"], ["max_z"], axes=[1], keepdims=0),
        helper.make_node("Sub", ["max_z", "cut"], [SCORE_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "spread_z_score",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(SCORE_OUTPUT, onnx.TensorProto.FLOAT, [None])],
        initializers,
    )
    exported = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    onnx.checker.check_model(exported)
    return exported
