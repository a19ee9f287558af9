"""ONNX export with one contract for every model, and the parity check that gates registration.

Every exported model takes `features` (float32, [rows, n_features]) and gives `score` (float32,
[rows]): the fault probability for the classifier, the anomaly score (higher is stranger) for the
detector. The serving side then needs no per-model code.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import helper

from modelcycle.errors import ModelValidationError
from modelcycle.registry.contract import FEATURES_METADATA_KEY, INPUT_NAME, SCORE_OUTPUT

ONNX_OPSET = 15
ONNX_ML_OPSET = 3


def embed_feature_names(model: onnx.ModelProto, names: list[str]) -> None:
    """Record the input's column order inside the model, so the artifact's hash covers it."""
    entry = model.metadata_props.add()
    entry.key = FEATURES_METADATA_KEY
    entry.value = json.dumps(names)


def expose_score(model: onnx.ModelProto, source: str, *, column: int | None, negate: bool) -> None:
    """Append nodes turning a converter's output into the `score` vector, the only output."""
    graph = model.graph
    current = source
    if column is not None:
        graph.initializer.append(
            helper.make_tensor("score_column", onnx.TensorProto.INT64, [], [column])
        )
        graph.node.append(
            helper.make_node("Gather", [current, "score_column"], ["score_gathered"], axis=1)
        )
        current = "score_gathered"
    if negate:
        graph.node.append(helper.make_node("Neg", [current], ["score_negated"]))
        current = "score_negated"
    graph.initializer.append(helper.make_tensor("score_shape", onnx.TensorProto.INT64, [1], [-1]))
    graph.node.append(helper.make_node("Reshape", [current, "score_shape"], [SCORE_OUTPUT]))
    # `score` becomes the only output: a converter's label and probability outputs have other
    # shapes, and generic consumers (MLflow's pyfunc, `mlflow models serve`) expect one per row.
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(SCORE_OUTPUT, onnx.TensorProto.FLOAT, [None]))
    onnx.checker.check_model(model)


def onnx_scores(model_bytes: bytes, features: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scores from ONNX Runtime, as the API will compute them."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: features.astype(np.float32)})
    return np.asarray(scores, dtype=np.float32)


def check_parity(
    model_bytes: bytes,
    native_scores: NDArray[np.floating],
    features: NDArray[np.float32],
    *,
    tolerance: float,
) -> float:
    """The largest |ONNX - native| score difference on held-out rows; refuses beyond tolerance."""
    exported = onnx_scores(model_bytes, features).astype(np.float64)
    if exported.shape != native_scores.shape:
        raise ModelValidationError(
            f"ONNX model returns {exported.shape} scores for {native_scores.shape} native ones"
        )
    difference = float(np.max(np.abs(exported - native_scores))) if len(exported) else 0.0
    if not difference <= tolerance:
        raise ModelValidationError(
            f"ONNX model does not reproduce the native predictions: max difference {difference:.3g}"
            f" > {tolerance:g} on {len(exported)} held-out rows"
        )
    return difference
