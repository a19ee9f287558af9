"""One device's page: its sensors over the last days, its scores with thresholds, why it is odd.

Sensors are shown as hourly means, the `<sensor>_mean` feature the lake already keeps per
device-hour: downsampled server-side, at most 24 points a day per series (`MAX_DAYS` keeps it
under 500). The sensors that contributed most are those whose hourly spread (`<sensor>_std`) lay
furthest from the fleet's, in robust z-scores (median and MAD x 1.4826 over every
device's windows of the newest shown day): the quantity the anomaly detector thresholds
(training/spread.py), so no model has to be loaded to explain one. What a day's partitions give
every page (baseline, each device's extreme spreads, scores by device) is kept per object
version by `day_reads.py`; a page reads only its device's row groups of the means it draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from modelcycle.errors import InvalidInputError
from modelcycle.fleet.day_reads import DayFeatures
from modelcycle.fleet.devices import customer_devices
from modelcycle.fleet.query import MAX_DAYS
from modelcycle.fleet.sources import DeviceNotFoundError, FleetSources, firing_device_alerts

DEFAULT_SERIES = 6  # sensors drawn when none are asked for: the top contributors
TOP_CONTRIBUTORS = 5


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


@dataclass(frozen=True)
class _Features:
    """The shown days' features partitions as `DayReads` keeps them, oldest first, and the
    newest one, whose fleet baseline every z of the page is measured against."""

    days: list[tuple[date, DayFeatures]]
    baseline: DayFeatures


def _features(sources: FleetSources, days: list[date]) -> _Features | None:
    found = [(day, f) for day in days if (f := sources.reads.features(sources.lake, day))]
    return _Features(days=found, baseline=found[-1][1]) if found else None


def _aligned(day: DayFeatures, row: int, sensors: list[str]) -> tuple[Any, ...]:
    """The device's lowest and highest spread of the day (and their hours) per `sensors`."""
    where = {name: n for n, name in enumerate(day.sensors)}
    columns = np.array([where.get(s, -1) for s in sensors], dtype=int)
    present = columns >= 0
    safe = np.where(present, columns, 0)
    pick = [np.where(present, a[row, safe], np.nan) for a in (day.low, day.high)]
    hours = [
        np.where(present, a[row, safe], np.datetime64("NaT")) for a in (day.low_at, day.high_at)
    ]
    return pick[0], pick[1], hours[0], hours[1]


def _contributors(features: _Features, device: str) -> list[dict[str, Any]]:
    """Per sensor, the window whose spread lies furthest from the fleet's: at the device's
    lowest or highest spread of a shown day, so only those extremes are compared."""
    base = features.baseline
    values, hours = [], []
    for _, day in features.days:
        row = day.devices.get(device)
        if row is None:
            continue
        low, high, low_at, high_at = _aligned(day, row, base.sensors)
        values += [low, high]
        hours += [low_at, high_at]
    if not values:
        return []
    center = np.nan_to_num(base.center)
    scale = np.maximum(np.nan_to_num(base.scale), 1e-6)
    spread = np.vstack(values)
    z = np.nan_to_num(np.abs(spread - center) / scale, nan=0.0, posinf=0.0)
    peak = z.argmax(axis=0)
    at = np.vstack(hours)
    found = []
    for n, sensor in enumerate(base.sensors):
        value = spread[peak[n], n]
        found.append(
            {
                "sensor": sensor,
                "z": round(float(z[peak[n], n]), 2),
                "window_start": at[peak[n], n].astype("datetime64[us]").item(),
                "spread": None if np.isnan(value) else float(value),
                "fleet_spread": round(float(center[n]), 4),
            }
        )
    return sorted(found, key=lambda c: -c["z"])[:TOP_CONTRIBUTORS]


def _series(
    sources: FleetSources, features: _Features, device: str, sensors: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Hourly means of `sensors`: only the device's row groups and those columns are read."""
    parts = [
        part
        for day, _ in features.days
        if (part := sources.reads.device_means(sources.lake, day, device, sensors)) is not None
    ]
    if not parts:
        return {sensor: [] for sensor in sensors}
    frame = pl.concat(parts, how="diagonal_relaxed").sort("window_start")
    return {
        sensor: frame.select(
            pl.col("window_start").alias("t"),
            (pl.col(f"{sensor}_mean") if f"{sensor}_mean" in frame.columns else pl.lit(None)).alias(
                "mean"
            ),
        ).to_dicts()
        for sensor in sensors
    }


def _score_series(sources: FleetSources, days: list[date], device: str) -> list[dict[str, Any]]:
    merged: pl.DataFrame | None = None
    for model, column in (
        (sources.anomaly_model, "anomaly_score"),
        (sources.fault_model, "fault_probability"),
    ):
        parts = [
            s.of(device).select(pl.col("window_start").alias("t"), pl.col("score").alias(column))
            for s in (sources.reads.scores(sources.lake, day, model) for day in days)
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
    features = _features(sources, shown)
    names = [] if features is None else features.baseline.sensors
    unknown = [s for s in sensors or [] if s not in names]
    if unknown:
        raise InvalidInputError(f"sensors: {unknown[0]!r} is not a sensor of {device_id}")
    contributors = [] if features is None else _contributors(features, device_id)
    chosen = sensors or [c["sensor"] for c in contributors][:DEFAULT_SERIES] or names[:1]
    series = {} if features is None else _series(sources, features, device_id, chosen)
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
