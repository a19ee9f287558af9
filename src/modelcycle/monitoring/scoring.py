"""Batch scoring: a model version scores every device-window of a day from the lake.

Scores go to `scores/date=D/<model>.parquet`, one object per model, replaced whole: the lake
never shows a half-written scoring, and re-running a day gives the same object.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from modelcycle.features.store import load_features
from modelcycle.features.windows import WINDOW_START
from modelcycle.lake import layout
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.monitoring.champions import ServedVersion
from modelcycle.storage import ObjectStore

SCORES_SCHEMA = pa.schema(
    [
        pa.field(DEVICE_COLUMN, pa.string(), nullable=False),
        pa.field(WINDOW_START, pa.timestamp("us"), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("flagged", pa.bool_(), nullable=False),
    ]
)
SCORE_BATCH_ROWS = 8192


def day_features(lake: ObjectStore, day: date, served: ServedVersion) -> pa.Table:
    """The day's window features, in the version's own feature order."""
    return load_features(lake, [day], served.model.spec)


def feature_matrix(table: pa.Table, names: tuple[str, ...] | list[str]) -> NDArray[np.float32]:
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in names]
    return np.column_stack(columns).astype(np.float32, copy=False)


def predict_all(served: ServedVersion, matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scores in batches: one ONNX call per batch, no per-row Python."""
    parts = [
        served.model.predict(matrix[start : start + SCORE_BATCH_ROWS])
        for start in range(0, len(matrix), SCORE_BATCH_ROWS)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def score_table(features: pa.Table, served: ServedVersion) -> pa.Table:
    scores = predict_all(served, feature_matrix(features, served.model.features))
    n = len(scores)
    return pa.table(
        {
            DEVICE_COLUMN: features.column(DEVICE_COLUMN),
            WINDOW_START: features.column(WINDOW_START).cast(pa.timestamp("us")),
            "model": pa.array([served.name] * n, pa.string()),
            "version": pa.array([served.version] * n, pa.string()),
            "score": pa.array(scores, pa.float32()),
            "flagged": pa.array(scores >= served.decision_threshold, pa.bool_()),
        },
        schema=SCORES_SCHEMA,
    )


def write_scores(lake: ObjectStore, day: date, table: pa.Table) -> str:
    """Write aside, then put the object whole (a rename locally, one PUT on S3/GCS)."""
    model = table.column("model")[0].as_py() if table.num_rows else "empty"
    key = layout.scores_partition(day, model)
    with tempfile.TemporaryDirectory(prefix="modelcycle-scores-") as scratch:
        path = Path(scratch) / "scores.parquet"
        pq.write_table(table, path, compression="zstd")
        lake.put_file(path, key, move=True)
    return key


def read_scores(lake: ObjectStore, day: date, model: str) -> pa.Table | None:
    key = layout.scores_partition(day, model)
    if not lake.exists(key):
        return None
    return pq.read_table(pa.BufferReader(lake.read_bytes(key)))
