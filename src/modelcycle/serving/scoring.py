"""The work behind the predict routes, from body bytes to scores: plain functions, so the route
can run them inline (small bodies) or in a worker thread (everything else)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from modelcycle.features.windows import WINDOW_START, compute_features
from modelcycle.registry.loading import LoadedModel
from modelcycle.serving.inputs import feature_matrix, readings_table
from modelcycle.serving.schemas import DeviceReadings, PredictRequest, parse_json_body
from modelcycle.serving.workload import check_value_budget

if TYPE_CHECKING:
    import pyarrow as pa

# One device request may carry this many readings per allowed row (an hour of minutes).
READINGS_PER_ROW = 60


def score_rows(raw: bytes, model: LoadedModel, *, max_rows: int) -> list[float]:
    """Scores for the rows of a `PredictRequest` body."""
    return score_rows_keeping_matrix(raw, model, max_rows=max_rows)[0]


def score_rows_keeping_matrix(
    raw: bytes, model: LoadedModel, *, max_rows: int
) -> tuple[list[float], NDArray[np.float32]]:
    """Scores, and the feature matrix they came from (shadow scoring reuses it unparsed)."""
    rows = parse_rows(raw, model, max_rows=max_rows)
    scores: list[float] = model.predict(rows).tolist()
    return scores, rows


def parse_rows(raw: bytes, model: LoadedModel, *, max_rows: int) -> NDArray[np.float32]:
    """The [rows, features] matrix of a `PredictRequest` body, in the model's column order."""
    n_features = len(model.features)
    check_value_budget(
        raw,
        max_rows * n_features,
        f"a request carries at most {max_rows} rows of {n_features} values "
        "(MODELCYCLE_SERVING_MAX_ROWS)",
    )
    body = parse_json_body(PredictRequest, raw)
    return feature_matrix(body, model.features, max_rows=max_rows)


@dataclass(frozen=True)
class DeviceScores:
    windows: list[datetime]
    scores: list[tuple[LoadedModel, list[float]]]


def score_device(
    raw: bytes, device_id: str, models: list[LoadedModel], *, max_rows: int
) -> DeviceScores:
    """Hourly window features from one device's raw readings, scored by every model."""
    max_readings = max_rows * READINGS_PER_ROW
    n_sensors = max(len(model.spec.sensors) for model in models)
    check_value_budget(
        raw,
        max_readings * (n_sensors + 1),
        f"a device request carries at most {max_readings} readings of {n_sensors} sensors "
        f"({READINGS_PER_ROW} × MODELCYCLE_SERVING_MAX_ROWS)",
    )
    body = parse_json_body(DeviceReadings, raw)
    features_by_sensors: dict[tuple[str, ...], pa.Table] = {}  # models on the same sensors
    windows: list[datetime] = []
    scores = []
    for model in models:
        sensors = model.spec.sensors
        if sensors not in features_by_sensors:
            table = readings_table(device_id, body, sensors, max_readings=max_readings)
            features_by_sensors[sensors] = compute_features(table, model.spec)
        features = features_by_sensors[sensors]
        matrix = np.column_stack(
            [features.column(n).to_numpy(zero_copy_only=False) for n in model.features]
        ).astype(np.float32)
        scores.append((model, model.predict(matrix).tolist()))
        windows = features.column(WINDOW_START).to_pylist()
    return DeviceScores(windows=windows, scores=scores)
