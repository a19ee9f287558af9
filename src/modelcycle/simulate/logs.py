"""Device-day logs as text, with the imperfections of logs from the field.

Values are formatted by polars (fast, vectorised); the rare imperfections are then applied to a
handful of lines: missing minutes, empty fields, duplicated lines, truncated and garbled lines,
sensor error codes, a clock-skewed line from the next day, and (rarely) a whole unreadable file.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray

ERROR_CODE = "-9999.000"

# Expected count per device-day of each line-level imperfection.
RATES = {
    "missing_minute": 3.0,
    "empty_field": 3.0,
    "duplicate": 2.0,
    "truncated": 0.2,
    "garbled": 0.2,
    "error_code": 0.1,
    "clock_skew": 0.05,
}
GAP_PER_DEVICE_DAY = 0.1
GARBAGE = ("#!", "x", "?", "12..3", "NaN!", "\x7f")


def day_timestamps(day: date) -> pl.Series:
    start = datetime.combine(day, datetime.min.time())
    stamps = [(start + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S") for m in range(1440)]
    return pl.Series("timestamp", stamps)


def _kept_minutes(rng: np.random.Generator) -> NDArray[np.bool_]:
    keep = np.ones(1440, dtype=bool)
    keep[rng.integers(0, 1440, rng.poisson(RATES["missing_minute"]))] = False
    if rng.random() < GAP_PER_DEVICE_DAY:
        length = int(rng.integers(5, 61))
        first = int(rng.integers(0, 1440 - length))
        keep[first : first + length] = False
    return keep


def format_log(
    values: NDArray[np.float64],
    timestamps: pl.Series,
    device: str,
    sensors: list[str],
    rng: np.random.Generator,
) -> str:
    """The CSV text of one device-day, imperfections included."""
    keep = _kept_minutes(rng)
    frame = pl.from_numpy(values[keep].astype(np.float32), schema=sensors)
    frame = frame.with_columns(
        timestamps.filter(pl.Series(keep)).alias("timestamp"), pl.lit(device).alias("device_id")
    ).select(["timestamp", "device_id", *sensors])
    text = frame.write_csv(float_precision=3, line_terminator="\n")
    return _imperfect(text, len(sensors), rng)


def _edit_field(line: str, rng: np.random.Generator, replacement: str | None) -> str:
    fields = line.split(",")
    index = int(rng.integers(2, len(fields)))
    if replacement is None:
        replacement = fields[index] + GARBAGE[int(rng.integers(len(GARBAGE)))]
    fields[index] = replacement
    return ",".join(fields)


def _skew_clock(line: str) -> str:
    stamp, rest = line.split(",", 1)
    shifted = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") + timedelta(days=1)
    return f"{shifted:%Y-%m-%d %H:%M:%S},{rest}"


def _imperfect(text: str, sensors: int, rng: np.random.Generator) -> str:
    lines = text.rstrip("\n").split("\n")
    rows = len(lines) - 1
    if rows < 2:
        return text

    def pick(kind: str) -> list[int]:
        return [int(i) for i in rng.integers(1, rows + 1, rng.poisson(RATES[kind]))]

    for i in pick("empty_field"):
        lines[i] = _edit_field(lines[i], rng, "")
    for i in pick("error_code"):
        lines[i] = _edit_field(lines[i], rng, ERROR_CODE)
    for i in pick("garbled"):
        lines[i] = _edit_field(lines[i], rng, None)
    for i in pick("truncated"):
        lines[i] = lines[i][: int(rng.integers(1, max(2, len(lines[i]) - 1)))].rstrip(",")
    for i in pick("clock_skew"):
        if lines[i][:4].isdigit():
            lines[i] = _skew_clock(lines[i])
    for i in sorted(pick("duplicate"), reverse=True):
        lines.insert(i + 1, lines[i])
    return "\n".join(lines) + "\n"


def unreadable_content(header: str, rng: np.random.Generator) -> bytes:
    """A file that cannot be ingested: binary garbage, or a header from another system."""
    if rng.random() < 0.5:
        return rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return ("ts;dev;" + header.replace(",", ";") + "\n0;0;0\n").encode()
