"""Both models: learn a planted signal, and the ONNX export gate refuses what does not match."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from modelcycle.errors import ModelValidationError
from modelcycle.training.metrics import CONFUSION
from modelcycle.training.models import AnomalyDetector, FaultClassifier, evaluate
from modelcycle.training.onnx_export import check_parity, onnx_scores


def _data(seed: int) -> tuple[NDArray[np.float32], NDArray[np.int_]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 16)).astype(np.float32)  # n_readings + 3 sensors x 5 statistics
    y = (x[:, 0] + 0.3 * rng.normal(size=3000) > 1.6).astype(np.int_)
    x[:, 2] = np.abs(x[:, 2])  # the first sensor's std
    x[y == 1, 2] *= 6  # faulty windows are also noisier: an anomaly detector can see them
    x[rng.random(x.shape) < 0.01] = np.nan  # missing readings
    return x, y


@pytest.mark.parametrize("model_class", [FaultClassifier, AnomalyDetector])
def test_onnx_export_reproduces_native_scores(model_class: type) -> None:
    x, y = _data(0)
    model = model_class(seed=1)
    model.fit(x, y)
    exported = model.to_onnx(x.shape[1]).SerializeToString()
    difference = check_parity(
        exported, model.native_scores(x[:500]), x[:500], tolerance=model.parity_tolerance
    )
    assert difference <= model.parity_tolerance
    assert onnx_scores(exported, x[:3]).shape == (3,)


def test_parity_gate_refuses_an_export_of_another_model() -> None:
    x, y = _data(0)
    model, other = FaultClassifier(seed=1), FaultClassifier(seed=2)
    model.fit(x, y)
    other.fit(*_data(5))
    wrong = other.to_onnx(x.shape[1]).SerializeToString()
    with pytest.raises(ModelValidationError, match="does not reproduce"):
        check_parity(wrong, model.native_scores(x[:500]), x[:500], tolerance=model.parity_tolerance)


def test_parity_gate_refuses_an_export_that_reads_the_features_in_another_order() -> None:
    x, y = _data(0)
    model = FaultClassifier(seed=1)
    model.fit(x, y)
    exported = model.to_onnx(x.shape[1]).SerializeToString()
    shuffled = x[:500, ::-1].copy()  # what a column-order mistake feeds the exported model
    with pytest.raises(ModelValidationError, match="does not reproduce"):
        check_parity(
            exported, model.native_scores(x[:500]), shuffled, tolerance=model.parity_tolerance
        )


def test_classifier_finds_the_planted_fault_signal() -> None:
    x, y = _data(0)
    model = FaultClassifier()
    model.fit(x[:2000], y[:2000])
    metrics = evaluate(model, x[2000:], y[2000:])
    assert metrics["roc_auc"] > 0.95
    assert set(metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}
    # the confusion matrix at the threshold: the counts behind accuracy
    tp, fp, fn, tn = (metrics[name] for name in CONFUSION)
    assert tp + fp + fn + tn == len(y[2000:])
    assert tp + fn == y[2000:].sum()
    assert (tp + tn) / len(y[2000:]) == metrics["accuracy"]


def test_anomaly_detector_scores_faulty_windows_higher() -> None:
    x, y = _data(0)
    model = AnomalyDetector()
    model.fit(x[:2000], y[:2000])
    scores = model.native_scores(x[2000:])
    assert scores[y[2000:] == 1].mean() > scores[y[2000:] == 0].mean()


def test_classifier_needs_both_classes() -> None:
    x, _ = _data(0)
    with pytest.raises(ModelValidationError, match="both classes"):
        FaultClassifier().fit(x, np.zeros(len(x), dtype=np.int_))


def test_anomaly_detector_flags_odd_spread_but_not_a_device_with_unusual_levels() -> None:
    """A device's own offset (mean, min, max far off) is not an anomaly; a stuck sensor (std 0) or
    a spike (std several-fold) is, and a missing value never is."""
    rng = np.random.default_rng(3)
    sensors = 4
    x = rng.normal(50.0, 5.0, size=(2000, 1 + 5 * sensors)).astype(np.float32)
    spread = [2 + 5 * s for s in range(sensors)]  # each sensor's std column
    x[:, spread] = rng.normal(1.0, 0.05, size=(2000, sensors))
    model = AnomalyDetector()
    model.fit(x, np.zeros(2000, dtype=np.int_))
    odd = np.repeat(x[:1], 4, axis=0)
    odd[0, [1, 3, 4]] += 500.0  # levels of another world, ordinary spread
    odd[1, spread[1]] = 0.0  # stuck
    odd[2, spread[2]] = 4.0  # spike
    odd[3, spread[3]] = np.nan  # sensor silent for the hour
    flagged = model.native_scores(odd) >= model.decision_threshold
    assert flagged.tolist() == [False, True, True, False]


def test_anomaly_detector_refuses_features_that_are_not_hourly_windows() -> None:
    with pytest.raises(ModelValidationError, match="cannot read these features"):
        AnomalyDetector().fit(np.zeros((10, 12), dtype=np.float32), np.zeros(10, dtype=np.int_))
