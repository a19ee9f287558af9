"""One device's page: its sensors over the last days, its scores with thresholds, why it is odd.

Sensors are shown as hourly means, the `<sensor>_mean` feature the lake already keeps per
device-hour: downsampled server-side, at most 24 points a day per series (`MAX_DAYS` keeps it
under 500). The sensors that contributed most are those whose hourly spread (`<sensor>_std`) lay
furthest from the fleet's, in robust z-scores (median and MAD x 1.4826 over every
device's windows of the newest shown day, computed once per day): the quantity the anomaly
detector thresholds (training/spread.py), so no model has to be loaded to explain one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from modelcycle.errors import InvalidInputError
from modelcycle.features.store import local_copy
from modelcycle.fleet.devices import customer_devices
from modelcycle.fleet.sources import (
    DeviceNotFoundError,
    FleetSources,
    firing_device_alerts,
    read_day_scores,
)
from modelcycle.lake import layout

MAX_DAYS = 20  # x 24 hourly points: under 500 per series
DEFAULT_SERIES = 6  # sensors drawn when none are asked for: the top contributors
TOP_CONTRIBUTORS = 5
MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class DeviceDetail:
    device: dict[str, Any]
    days: list[date]
    sensors: list[str]  # every sensor the device reports
    series: dict[str, list[dict[str, Any]]]  # sensor -> [{t, mean}]
    scores: list[dict[str, Any]]  # [{t, anomaly_score, fault_probability}]
    thresholds: dict[str, float]
    contributors: list[dict[str, Any]]
    alerts: list[dict[str, Any]] = field(default_factory=list)


MAX_BASELINES = 64


@dataclass(frozen=True)
class _Features:
    baseline: pl.DataFrame  # per `<sensor>_std`: the fleet's median and scale (rows 0 and 1)
    device: pl.DataFrame  # the device's own windows: `<sensor>_mean` and `<sensor>_std`


def _baseline(sources: FleetSources, key: str, path: Any) -> pl.DataFrame:
    """Median and MAD x 1.4826 of every sensor's spread over the fleet's windows of one day."""
    meta = pq.read_metadata(path)
    cache_key = (sources.lake.url(key), meta.num_rows, meta.serialized_size, meta.created_by)
    found = sources.baselines.get(cache_key)
    if found is None:
        names = [n for n in pq.read_schema(path).names if n.endswith("_std")]
        fleet = pl.DataFrame(pl.from_arrow(pq.read_table(path, columns=names)))
        center = fleet.median()
        scale = fleet.select((pl.col(c) - center[c][0]).abs().median() * MAD_TO_STD for c in names)
        found = pl.concat([center, scale])
        if len(sources.baselines) >= MAX_BASELINES:
            sources.baselines.clear()
        sources.baselines[cache_key] = found
    return found


def _features(sources: FleetSources, days: list[date], device: str) -> _Features | None:
    """The device's own windows of the shown days, and the fleet baseline of the newest one."""
    mine, baseline = [], None
    for day in days:
        key = layout.features_partition(day)
        if not sources.lake.exists(key):
            continue
        with local_copy(sources.lake, key) as path:
            names = pq.read_schema(path).names
            wanted = ["device_id", "window_start"] + [
                n for n in names if n.endswith(("_mean", "_std"))
            ]
            own = pq.read_table(path, columns=wanted, filters=[("device_id", "==", device)])
            mine.append(pl.DataFrame(pl.from_arrow(own)))
            baseline = _baseline(sources, key, path)
    if baseline is None:
        return None
    return _Features(
        baseline=baseline, device=pl.concat(mine, how="diagonal_relaxed").sort("window_start")
    )


def _contributors(features: _Features, sensors: list[str]) -> list[dict[str, Any]]:
    mine, baseline = features.device, features.baseline
    found = []
    for sensor in sensors:
        column = f"{sensor}_std"
        if column not in mine.columns or len(mine) == 0:
            continue
        center = float(baseline[column][0] or 0.0)
        spread_scale = max(float(baseline[column][1] or 0.0), 1e-6)
        z = ((mine[column] - center) / spread_scale).abs().fill_nan(0.0).fill_null(0.0)
        peak = int(z.arg_max() or 0)
        found.append(
            {
                "sensor": sensor,
                "z": round(float(z[peak]), 2),
                "window_start": mine["window_start"][peak],
                "spread": mine[column][peak],
                "fleet_spread": round(center, 4),
            }
        )
    return sorted(found, key=lambda c: -c["z"])[:TOP_CONTRIBUTORS]


def _score_series(sources: FleetSources, days: list[date], device: str) -> list[dict[str, Any]]:
    merged: pl.DataFrame | None = None
    for model, column in (
        (sources.anomaly_model, "anomaly_score"),
        (sources.fault_model, "fault_probability"),
    ):
        parts = [
            s.filter(pl.col("device_id") == device).select(
                pl.col("window_start").alias("t"), pl.col("score").cast(pl.Float64).alias(column)
            )
            for s in (read_day_scores(sources.lake, day, model) for day in days)
            if s is not None
        ]
        if not parts:
            continue
        frame = pl.concat(parts)
        merged = frame if merged is None else merged.join(frame, on="t", how="full", coalesce=True)
    return [] if merged is None else merged.sort("t").to_dicts()


def device_detail(
    sources: FleetSources,
    customer_id: str,
    device_id: str,
    *,
    days: int = 7,
    sensors: list[str] | None = None,
) -> DeviceDetail:
    """The device's page, or `DeviceNotFoundError` when it is not one of the customer's."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days: {days} is not in 1..{MAX_DAYS}")
    fleet = customer_devices(sources, customer_id).filter(pl.col("device_id") == device_id)
    if fleet.is_empty():
        raise DeviceNotFoundError(f"no device {device_id!r}")
    device = fleet.drop("scored_day").to_dicts()[0]
    last = fleet.get_column("scored_day")[0]
    shown = [] if last is None else [last - timedelta(days=n) for n in reversed(range(days))]
    features = _features(sources, shown, device_id)
    names = (
        []
        if features is None
        else [c.removesuffix("_std") for c in features.baseline.columns if c.endswith("_std")]
    )
    unknown = [s for s in sensors or [] if s not in names]
    if unknown:
        raise InvalidInputError(f"sensors: {unknown[0]!r} is not a sensor of {device_id}")
    contributors = [] if features is None else _contributors(features, names)
    chosen = sensors or [c["sensor"] for c in contributors][:DEFAULT_SERIES] or names[:1]
    series: dict[str, list[dict[str, Any]]] = {}
    if features is not None:
        for sensor in chosen:
            series[sensor] = features.device.select(
                pl.col("window_start").alias("t"), pl.col(f"{sensor}_mean").alias("mean")
            ).to_dicts()
    alerts = firing_device_alerts(sources.store, [device_id]).drop("device_id").to_dicts()
    return DeviceDetail(
        device=device,
        days=shown,
        sensors=names,
        series=series,
        scores=_score_series(sources, shown, device_id),
        thresholds={
            "anomaly_score": sources.anomaly_threshold,
            "fault_probability": sources.fault_threshold,
        },
        contributors=contributors,
        alerts=alerts,
    )
