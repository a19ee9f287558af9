"""The customer's device list: status from the latest scored day, filter, search, sort, pages.

Status of a device on the newest day both models scored: `predicted_faulty` when a window's fault
probability reached the classifier's threshold, else `anomalous` when a window's anomaly score
reached the detector's or a device alert is firing, else `healthy`; `unscored` when the day has no
windows of it. The day's per-device peaks and the register are read once per object version
(`day_reads.py`); a call filters, joins and sorts them in memory, with the firing alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from modelcycle.fleet.query import DeviceQuery, DeviceStatus
from modelcycle.fleet.sources import (
    FleetSources,
    customer_register,
    firing_device_alerts,
    scored_days,
)

_STATUS_RANK = {s.value: i for i, s in enumerate(reversed(list(DeviceStatus)))}


@dataclass(frozen=True)
class DevicePage:
    customer_id: str
    scored_day: date | None
    total: int
    page: int
    page_size: int
    counts: dict[str, int]  # devices per status, before the status filter and search
    devices: list[dict[str, Any]]


def latest_common_day(sources: FleetSources) -> date | None:
    """The newest day scored by the detector (and by the classifier when it scored any)."""
    anomaly = scored_days(sources.lake, sources.anomaly_model)
    fault = set(scored_days(sources.lake, sources.fault_model))
    both = [d for d in anomaly if d in fault] or anomaly
    return both[-1] if both else None


def _day_summary(sources: FleetSources, day: date | None, devices: list[str]) -> pl.DataFrame:
    """Per device: peak anomaly score and fault probability of the day, with their flags."""
    empty = pl.DataFrame(
        schema={
            "device_id": pl.String,
            "anomaly_score": pl.Float64,
            "fault_probability": pl.Float64,
        }
    )
    if day is None:
        return empty
    parts = []
    for model, column in (
        (sources.anomaly_model, "anomaly_score"),
        (sources.fault_model, "fault_probability"),
    ):
        scores = sources.reads.scores(sources.lake, day, model)
        if scores is None:
            continue
        parts.append(
            scores.peaks.filter(pl.col("device_id").is_in(devices)).rename({"score": column})
        )
    if not parts:
        return empty
    summary = parts[0]
    for part in parts[1:]:
        summary = summary.join(part, on="device_id", how="full", coalesce=True)
    for column in ("anomaly_score", "fault_probability"):
        if column not in summary.columns:
            summary = summary.with_columns(pl.lit(None, pl.Float64).alias(column))
    return summary


def customer_devices(sources: FleetSources, customer_id: str) -> pl.DataFrame:
    """Every device of the customer with its status, scores and firing alert count."""
    register = customer_register(sources, customer_id)
    devices = register.get_column("device_id").to_list()
    day = latest_common_day(sources)
    alerts = firing_device_alerts(sources.store, devices).group_by("device_id").agg(alerts=pl.len())
    table = (
        register.join(_day_summary(sources, day, devices), on="device_id", how="left")
        .join(alerts, on="device_id", how="left")
        .with_columns(pl.col("alerts").fill_null(0).cast(pl.Int64))
    )
    status = (
        pl.when(pl.col("fault_probability") >= sources.fault_threshold)
        .then(pl.lit(DeviceStatus.PREDICTED_FAULTY.value))
        .when((pl.col("anomaly_score") >= sources.anomaly_threshold) | (pl.col("alerts") > 0))
        .then(pl.lit(DeviceStatus.ANOMALOUS.value))
        .when(pl.col("anomaly_score").is_null() & pl.col("fault_probability").is_null())
        .then(pl.lit(DeviceStatus.UNSCORED.value))
        .otherwise(pl.lit(DeviceStatus.HEALTHY.value))
    )
    return table.with_columns(status=status).with_columns(scored_day=pl.lit(day, pl.Date))


def device_page(sources: FleetSources, customer_id: str, query: DeviceQuery) -> DevicePage:
    table = customer_devices(sources, customer_id)
    counts = {s.value: 0 for s in DeviceStatus}
    for row in table.group_by("status").agg(n=pl.len()).iter_rows(named=True):
        counts[row["status"]] = row["n"]
    if query.status is not None:
        table = table.filter(pl.col("status") == query.status.value)
    if query.search:
        needle = query.search.lower()
        table = table.filter(
            pl.col("device_id").str.contains(needle, literal=True)
            | pl.col("site").str.to_lowercase().str.contains(needle, literal=True)
        )
    key = query.sort.removeprefix("-")
    descending = query.sort.startswith("-")
    if key == "status":
        table = table.with_columns(_rank=pl.col("status").replace_strict(_STATUS_RANK))
        key = "_rank"
    table = table.sort([key, "device_id"], descending=[descending, False], nulls_last=True)
    start = (query.page - 1) * query.page_size
    rows = table.slice(start, query.page_size).drop("_rank", strict=False)
    day = table.get_column("scored_day")[0] if len(table) else latest_common_day(sources)
    return DevicePage(
        customer_id=customer_id,
        scored_day=day,
        total=len(table),
        page=query.page,
        page_size=query.page_size,
        counts=counts,
        devices=[
            {k: v for k, v in row.items() if k != "scored_day"}
            for row in rows.iter_rows(named=True)
        ],
    )
