"""Hourly per-device window features, expressed as SQL.

One device-window is one device over one clock hour. For every sensor the window keeps its mean,
standard deviation, minimum, maximum and change (last minus first reading): enough to see a drift
(mean moves), rising vibration (std grows) and a stuck sensor (std is exactly zero). The query uses
only functions DuckDB and Spark SQL share (`date_trunc`, `stddev_pop`, `max_by`, `min_by`), so the
same text runs on either engine; serving runs it on the readings of a single request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelcycle.lake.schema import DEVICE_COLUMN, TIMESTAMP_COLUMN
from modelcycle.storage import duck

if TYPE_CHECKING:  # the API reads FeatureSpec at start; only computing features needs pyarrow
    import pyarrow as pa

WINDOW_MINUTES = 60
WINDOW_START = "window_start"
READINGS_COUNT = "n_readings"
STATISTICS = ("mean", "std", "min", "max", "delta")


@dataclass(frozen=True)
class FeatureSpec:
    """The sensors a model was trained on; the feature order is part of the model's contract."""

    sensors: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        names = [READINGS_COUNT]
        for sensor in self.sensors:
            names += [f"{sensor}_{stat}" for stat in STATISTICS]
        return names

    @classmethod
    def from_feature_names(cls, names: list[str]) -> FeatureSpec:
        sensors = tuple(dict.fromkeys(n.rsplit("_", 1)[0] for n in names if n != READINGS_COUNT))
        spec = cls(sensors=sensors)
        if spec.feature_names != names:
            raise ValueError("feature names are not in the order this module produces")
        return spec


def statistic_columns(n_features: int, statistic: str) -> list[int]:
    """Indices of one statistic's columns in a feature vector laid out as `feature_names` lays it.

    A model that reads only some statistics (the anomaly detector reads `std`) finds them by
    position, as ONNX does; a vector of another length has no such layout and is refused.
    """
    per_sensor = len(STATISTICS)
    if n_features < 1 + per_sensor or (n_features - 1) % per_sensor:
        raise ValueError(
            f"{n_features} features is not {READINGS_COUNT} plus {per_sensor} statistics per sensor"
        )
    offset = 1 + STATISTICS.index(statistic)
    return list(range(offset, n_features, per_sensor))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sensor_aggregates(sensor: str) -> list[str]:
    col, ts = _quote(sensor), _quote(TIMESTAMP_COLUMN)
    # delta is NaN-free only when both ends were read; a missing end leaves it NULL (LightGBM's
    # and the imputer's missing value), never a fake zero.
    return [
        f"CAST(avg({col}) AS FLOAT) AS {_quote(sensor + '_mean')}",
        f"CAST(stddev_pop({col}) AS FLOAT) AS {_quote(sensor + '_std')}",
        f"CAST(min({col}) AS FLOAT) AS {_quote(sensor + '_min')}",
        f"CAST(max({col}) AS FLOAT) AS {_quote(sensor + '_max')}",
        f"CAST(max_by({col}, {ts}) - min_by({col}, {ts}) AS FLOAT) AS {_quote(sensor + '_delta')}",
    ]


def feature_sql(spec: FeatureSpec, source: str) -> str:
    """SQL turning readings in `source` into one row per (device_id, window_start)."""
    aggregates = [f"CAST(count(*) AS FLOAT) AS {READINGS_COUNT}"]
    for sensor in spec.sensors:
        aggregates += _sensor_aggregates(sensor)
    dev, ts = _quote(DEVICE_COLUMN), _quote(TIMESTAMP_COLUMN)
    return (
        f"SELECT {dev}, date_trunc('hour', {ts}) AS {WINDOW_START}, "
        + ", ".join(aggregates)
        + f" FROM {source} GROUP BY {dev}, date_trunc('hour', {ts})"
        + f" ORDER BY {dev}, {WINDOW_START}"
    )


def compute_features(readings: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Features of in-memory readings (one request, or a test), with the training code path."""
    con = duck.connect()
    try:
        con.register("request_readings", readings)
        return con.sql(feature_sql(spec, "request_readings")).to_arrow_table()
    finally:
        con.close()
