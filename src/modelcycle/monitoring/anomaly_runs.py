"""Runs of consecutive anomalous hours: what the `device_anomaly` rule fires on.

It lives in monitoring, below alerting, because the alert rule and the quality measurement
(`anomaly_quality.py`) must judge a device-day by exactly the same definition.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from modelcycle.features.windows import WINDOW_MINUTES, WINDOW_START
from modelcycle.lake.schema import DEVICE_COLUMN


def anomalous_runs(scores: pl.DataFrame, threshold: float, consecutive: int) -> pl.DataFrame:
    """Per device, the longest run of consecutive hourly windows scoring above `threshold`."""
    step = timedelta(minutes=WINDOW_MINUTES)
    ordered = scores.sort(DEVICE_COLUMN, WINDOW_START).with_columns(
        above=pl.col("score") > threshold
    )
    breaks = (pl.col(WINDOW_START).diff().over(DEVICE_COLUMN) != step).fill_null(True) | (
        pl.col("above") != pl.col("above").shift(1).over(DEVICE_COLUMN)
    ).fill_null(True)
    runs = (
        ordered.with_columns(run=breaks.cast(pl.Int32).cum_sum().over(DEVICE_COLUMN))
        .filter(pl.col("above"))
        .group_by(DEVICE_COLUMN, "run")
        .agg(
            windows=pl.len(),
            first=pl.col(WINDOW_START).min(),
            last=pl.col(WINDOW_START).max(),
            peak=pl.col("score").max(),
        )
        .filter(pl.col("windows") >= consecutive)
    )
    return (
        runs.sort("windows", descending=True)
        .unique(DEVICE_COLUMN, keep="first")
        .sort(DEVICE_COLUMN)
    )
