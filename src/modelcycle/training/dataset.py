"""The training set: window features of a span of days, labelled, split by time.

The split is by time, never random: the test windows all come after the training windows, as the
model will meet them in production. A random split would leak a fault episode's neighbouring hours
into both sides and flatter the metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from numpy.typing import NDArray

from modelcycle.errors import DataNotFoundError
from modelcycle.features.store import load_features, readings_spec
from modelcycle.features.windows import WINDOW_START, FeatureSpec
from modelcycle.lake import layout
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.storage import ObjectStore
from modelcycle.training.labels import label_windows, read_ledger

log = structlog.get_logger(__name__)

TEST_SHARE = 0.2


@dataclass(frozen=True)
class TrainingSet:
    spec: FeatureSpec
    days: list[date]
    x_train: NDArray[np.float32]
    y_train: NDArray[np.int_]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int_]
    window_start: datetime
    window_end: datetime
    split_at: datetime
    data_hash: str
    test_devices: tuple[str, ...] = ()  # the device of each held-out row (the customers gate)

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names


def training_days(end: date, window_days: int) -> list[date]:
    return [end - timedelta(days=offset) for offset in reversed(range(window_days))]


def _matrix(table: pa.Table, names: list[str]) -> NDArray[np.float32]:
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in names]
    return np.column_stack(columns).astype(np.float32, copy=False)


def _hash_training_data(
    table: pa.Table, matrix: NDArray[np.float32], labels: NDArray[np.int_]
) -> str:
    """sha256 of what the models see: window keys, feature values and labels."""
    digest = hashlib.sha256()
    digest.update("\n".join(table.column(DEVICE_COLUMN).to_pylist()).encode())
    digest.update(pc.cast(table.column(WINDOW_START), pa.int64()).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(matrix).tobytes())
    digest.update(labels.astype(np.int8).tobytes())
    return digest.hexdigest()


def _from_micros(micros: np.int64) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=int(micros))


def build_training_set(
    *,
    lake: ObjectStore,
    raw: ObjectStore,
    end: date,
    window_days: int,
    on_day: Callable[[date], None] | None = None,
) -> TrainingSet:
    """Features and labels for the `window_days` days ending with `end`, split by time."""
    wanted = training_days(end, window_days)
    days = [day for day in wanted if lake.exists(layout.readings_partition(day))]
    if not days:
        raise DataNotFoundError(
            f"no ingested days between {wanted[0]} and {end} in {lake.url()}: run ingest first"
        )
    if len(days) < len(wanted):
        # Expected while a fleet's history is younger than the window (the demo's first days).
        missing = [str(day) for day in wanted if day not in days]
        log.info("training on fewer days than the window", missing=missing)
    spec = readings_spec(lake, days[-1])
    table = load_features(lake, days, spec, on_day=on_day)
    known_at = datetime.combine(end + timedelta(days=1), time())
    labels = label_windows(table, read_ledger(raw), known_at).to_numpy().astype(np.int_)
    matrix = _matrix(table, spec.feature_names)
    starts = pc.cast(table.column(WINDOW_START), pa.int64()).to_numpy()
    distinct = np.unique(starts)
    split_value = distinct[min(len(distinct) - 1, int(len(distinct) * (1 - TEST_SHARE)))]
    is_test = starts >= split_value
    first, last = distinct[0], distinct[-1]
    return TrainingSet(
        spec=spec,
        days=days,
        x_train=matrix[~is_test],
        y_train=labels[~is_test],
        x_test=matrix[is_test],
        y_test=labels[is_test],
        window_start=_from_micros(first),
        window_end=_from_micros(last) + timedelta(hours=1),
        split_at=_from_micros(split_value),
        data_hash=_hash_training_data(table, matrix, labels),
        test_devices=tuple(
            device
            for device, held_out in zip(
                table.column(DEVICE_COLUMN).to_pylist(), is_test.tolist(), strict=True
            )
            if held_out
        ),
    )
