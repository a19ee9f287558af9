"""Metrics for rare faults: accuracy alone would reward a model that never predicts a fault."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def binary_metrics(
    labels: NDArray[np.int_], scores: NDArray[np.floating], predicted: NDArray[np.int_]
) -> dict[str, float]:
    """accuracy, precision, recall, f1, roc_auc, pr_auc, the positive share and the confusion
    matrix at the threshold `predicted` was cut at (true/false positives/negatives, as counts).

    ROC-AUC and PR-AUC need both classes; with one class they are NaN rather than a made-up value.
    """
    both_classes = len(np.unique(labels)) == 2
    tn, fp, fn, tp = (
        confusion_matrix(labels, predicted, labels=[0, 1]).ravel() if len(labels) else (0,) * 4
    )
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else float("nan"),
        "positive_share": float(np.mean(labels)) if len(labels) else float("nan"),
        **confusion_counts(int(tp), int(fp), int(fn), int(tn)),
    }


CONFUSION = ("true_positives", "false_positives", "false_negatives", "true_negatives")


def confusion_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """The confusion matrix as metrics (floats, as MLflow keeps them), named by `CONFUSION`."""
    return dict(zip(CONFUSION, (float(tp), float(fp), float(fn), float(tn)), strict=True))
