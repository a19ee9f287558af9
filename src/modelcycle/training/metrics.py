"""Metrics for rare faults: accuracy alone would reward a model that never predicts a fault."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def binary_metrics(
    labels: NDArray[np.int_], scores: NDArray[np.floating], predicted: NDArray[np.int_]
) -> dict[str, float]:
    """accuracy, precision, recall, f1, roc_auc, pr_auc and the positive share.

    ROC-AUC and PR-AUC need both classes; with one class they are NaN rather than a made-up value.
    """
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else float("nan"),
        "positive_share": float(np.mean(labels)) if len(labels) else float("nan"),
    }
