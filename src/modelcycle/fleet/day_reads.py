"""The lake's per-day objects as the fleet pages need them, read once per object version.

A day's scores and features partitions are replaced whole (a new size, time or ETag), never
edited, so what the pages derive from one is computed on the first view that needs it and kept,
keyed by the object's key and stamp, for every later page, device and customer: a day's scores
sorted by device with each device's rows found by offset, and their per-device peaks; a features
partition's Parquet footer, which row groups hold each device, the fleet's spread baseline (median
and MAD x 1.4826 of every `<sensor>_std`) and each device's lowest and highest spread per sensor
with their hours (enough for the robust z's peak: |x - median| is largest at an extreme of x).
A device page then decodes only its own row groups' `_mean` columns of the sensors it draws.
The cache holds `MAX_ENTRIES` objects, oldest used first out: about 1.5 MB a 1000-device,
100-sensor features day, 0.3 MB a scores day.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from numpy.typing import NDArray

from modelcycle.lake import layout
from modelcycle.lake.fleet import read_fleet
from modelcycle.storage import ObjectStore

MAX_ENTRIES = 64  # 20 shown days x (features + two models' scores), and the register
MAD_TO_STD = 1.4826
_DEVICE, _TIME = "device_id", "window_start"
T = TypeVar("T")


@dataclass(frozen=True)
class DayScores:
    frame: pl.DataFrame  # window_start, score: sorted by device, then time
    rows: dict[str, tuple[int, int]]  # device -> (offset, length) in `frame`
    peaks: pl.DataFrame  # device_id, score: the device's highest of the day

    def of(self, device: str) -> pl.DataFrame:
        offset, length = self.rows.get(device, (0, 0))
        return self.frame.slice(offset, length)


@dataclass(frozen=True)
class DayFeatures:
    sensors: list[str]  # in the partition's column order
    center: NDArray[np.float64]  # per sensor: the fleet's median `_std` of the day
    scale: NDArray[np.float64]  # per sensor: MAD x 1.4826 of it
    devices: dict[str, int]  # device -> row of the arrays below
    low: NDArray[np.float32]  # (device, sensor): lowest `_std` of the day, NaN when none
    low_at: NDArray[np.datetime64]  # its hour (NaT when none)
    high: NDArray[np.float32]
    high_at: NDArray[np.datetime64]
    groups: dict[str, list[int]]  # device -> the row groups that may hold its windows
    metadata: pq.FileMetaData


def _segments(ids: NDArray[Any]) -> NDArray[np.intp]:
    """Start offsets of the runs of equal ids (sorted input)."""
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, np.intp)


def _scores_of(table: pl.DataFrame) -> DayScores:
    frame = table.select(_DEVICE, _TIME, pl.col("score").cast(pl.Float64)).sort(_DEVICE, _TIME)
    ids = frame.get_column(_DEVICE).to_numpy()
    starts = _segments(ids)
    ends = np.r_[starts[1:], len(ids)].astype(int)
    rows = {str(ids[s]): (int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)}
    peaks = frame.group_by(_DEVICE).agg(pl.col("score").max())
    return DayScores(frame=frame.drop(_DEVICE), rows=rows, peaks=peaks)


def _extreme(
    values: NDArray[np.float32], starts: NDArray[np.intp], reduce: Any
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """Per run of rows and column: the extreme (NaN ignored) and the first row holding it."""
    found = reduce.reduceat(values, starts, axis=0)
    lengths = np.diff(np.r_[starts, len(values)])
    run = np.repeat(np.arange(len(starts)), lengths)
    rows = np.where(values == found[run], np.arange(len(values))[:, None], len(values))
    return found, np.minimum.reduceat(rows, starts, axis=0)


def _features_of(parquet: pq.ParquetFile) -> DayFeatures:
    metadata = parquet.metadata
    names = parquet.schema_arrow.names
    stds = [n for n in names if n.endswith("_std")]
    frame = pl.DataFrame(pl.from_arrow(parquet.read(columns=[_DEVICE, _TIME, *stds])))
    frame = frame.sort(_DEVICE, _TIME)
    ids = frame.get_column(_DEVICE).to_numpy()
    values = frame.select(pl.col(stds).cast(pl.Float32)).to_numpy().astype(np.float32)
    values = values.reshape(len(ids), len(stds))
    times = np.r_[frame.get_column(_TIME).to_numpy().astype("datetime64[us]"), np.datetime64("NaT")]
    starts = _segments(ids)
    if len(ids) and stds:
        low, low_row = _extreme(values, starts, np.fmin)
        high, high_row = _extreme(values, starts, np.fmax)
        with np.errstate(all="ignore"):
            center = np.nanmedian(values, axis=0).astype(np.float64)
            scale = np.nanmedian(np.abs(values - center), axis=0) * MAD_TO_STD
    else:
        low = high = np.zeros((len(starts), len(stds)), np.float32)
        low_row = high_row = np.full((len(starts), len(stds)), len(ids))
        center = scale = np.zeros(len(stds))
    devices = {str(ids[s]): n for n, s in enumerate(starts)}
    return DayFeatures(
        sensors=[n.removesuffix("_std") for n in stds],
        center=center,
        scale=scale,
        devices=devices,
        low=low,
        low_at=times[low_row],
        high=high,
        high_at=times[high_row],
        groups=_row_groups(metadata, names.index(_DEVICE), list(devices)),
        metadata=metadata,
    )


def _row_groups(metadata: pq.FileMetaData, column: int, devices: list[str]) -> dict[str, list[int]]:
    """Each device's row groups by the device_id statistics (every group when they are absent)."""
    bounds: list[tuple[Any, Any]] = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(column).statistics
        known = stats is not None and stats.has_min_max
        bounds.append((stats.min, stats.max) if known else (None, None))
    return {
        device: [g for g, (low, high) in enumerate(bounds) if low is None or low <= device <= high]
        for device in devices
    }


class DayReads:
    """The bounded cache: one entry per (object URL, stamp), least recently used out first."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, store: ObjectStore, key: str, build: Callable[[], T]) -> T | None:
        stamp = store.stamp(key)
        if stamp is None:
            return None
        cache_key = (store.url(key), stamp)
        with self._lock:
            if cache_key in self._entries:
                self._entries.move_to_end(cache_key)
                found: T = self._entries[cache_key]
                return found
        built = build()  # outside the lock: two first viewers of a day may both build it
        with self._lock:
            self._entries[cache_key] = built
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
        return built

    def register(self, raw: ObjectStore) -> pl.DataFrame:
        """The fleet register (a missing one is `read_fleet`'s DataNotFoundError)."""

        def build() -> pl.DataFrame:
            return pl.DataFrame(pl.from_arrow(read_fleet(raw)))

        found = self._get(raw, layout.FLEET_FILE, build)
        return found if found is not None else build()

    def scores(self, lake: ObjectStore, day: date, model: str) -> DayScores | None:
        key = layout.scores_partition(day, model)

        def build() -> DayScores:
            with lake.open(key) as handle:
                return _scores_of(pl.DataFrame(pl.from_arrow(pq.read_table(handle))))

        return self._get(lake, key, build)

    def features(self, lake: ObjectStore, day: date) -> DayFeatures | None:
        key = layout.features_partition(day)

        def build() -> DayFeatures:
            with lake.open(key) as handle:
                return _features_of(pq.ParquetFile(handle))

        return self._get(lake, key, build)

    def device_means(
        self, lake: ObjectStore, day: date, device: str, sensors: list[str]
    ) -> pl.DataFrame | None:
        """The device's hours of the day with `<sensor>_mean` of `sensors`: its row groups only."""
        for _ in range(2):  # once more if the partition was replaced while being read
            features = self.features(lake, day)
            if features is None or device not in features.groups:
                return None
            key = layout.features_partition(day)
            known = [s for s in sensors if s in features.sensors]
            columns = [_DEVICE, _TIME, *(f"{s}_mean" for s in known)]
            with lake.open(key) as handle:
                parquet = pq.ParquetFile(handle, metadata=features.metadata)
                table = parquet.read_row_groups(
                    features.groups[device], columns=columns, use_threads=False
                )
            if self.features(lake, day) is features:
                frame = pl.DataFrame(pl.from_arrow(table))
                return frame.filter(pl.col(_DEVICE) == device).drop(_DEVICE)
        return None
