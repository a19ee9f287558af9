"""The champion measured on a new version's own held-out rows, for the metric gate.

Each run's logged metrics come from its own test split; comparing those would compare two
different exams. The champion's ONNX artifact (sha256-checked) scores this training's test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modelcycle.errors import DataNotFoundError
from modelcycle.monitoring.champions import open_version
from modelcycle.monitoring.evaluation import metrics_for
from modelcycle.monitoring.scoring import predict_all
from modelcycle.registry.connection import registry_client
from modelcycle.registry.loading import RegistrySource
from modelcycle.registry.versions import CHALLENGER, CHAMPION
from modelcycle.settings import Settings
from modelcycle.training.dataset import TrainingSet


@dataclass(frozen=True)
class ChampionOnRows:
    """The champion's metrics on the rows, or None when there is no comparable champion."""

    metrics: dict[str, float] | None
    version: str | None
    predictions: NDArray[np.int_] | None = None  # 0/1 per held-out row, for the customers gate


def champion_on_rows(
    settings: Settings, name: str, new_version: str, data: TrainingSet
) -> ChampionOnRows:
    """Score `name@champion` on the test rows of `data`; no metrics when there is no champion,
    when the champion is the new version itself, or when it was trained on other features."""
    client, _ = registry_client(settings)
    try:
        champion = open_version(RegistrySource(settings), client, name, CHAMPION)
    except DataNotFoundError:
        return ChampionOnRows(None, None)
    if champion.version == new_version:
        return ChampionOnRows(None, champion.version)
    if list(champion.model.features) != data.feature_names:
        return ChampionOnRows(None, champion.version)  # other features: not comparable
    scores = predict_all(champion, data.x_test)
    result = metrics_for(data.y_test, scores, champion.decision_threshold)
    predicted = (scores >= champion.decision_threshold).astype(np.int_)
    return ChampionOnRows(result.metrics, champion.version, predicted)


def challenger_predictions(
    settings: Settings, name: str, new_version: str, data: TrainingSet
) -> NDArray[np.int_] | None:
    """The new version's 0/1 predictions on the test rows of `data`, scored from its registered
    ONNX artifact the way the champion's are; None when `challenger` is another version."""
    client, _ = registry_client(settings)
    try:
        challenger = open_version(RegistrySource(settings), client, name, CHALLENGER)
    except DataNotFoundError:
        return None
    if challenger.version != new_version:
        return None
    scores = predict_all(challenger, data.x_test)
    return (scores >= challenger.decision_threshold).astype(np.int_)
