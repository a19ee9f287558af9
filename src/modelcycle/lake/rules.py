"""The rules a day's rows must pass, as polars expressions, and the reasons a line is refused.

Every row of a day's logs ends in exactly one place: the readings table, or the quarantine with
one reason (the first rule it breaks). Reasons are a short category plus a detail naming the
column or value, so the ingest report can count by category and a person can find the line.
Row rules are vectorised expressions over the parsed batch (the same engine as the parser, no
copy); the line rules (`refusal`) run in Python, only on the few lines the fast parse flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from modelcycle.lake.schema import (
    DEVICE_COLUMN,
    TIMESTAMP_COLUMN,
    TIMESTAMP_FORMAT,
    VALUE_MAX,
    VALUE_MIN,
    ReadingsSchema,
)

# Categories, as they appear in the quarantine and the report.
MISSING_TIMESTAMP = "missing timestamp"
DEVICE_MISMATCH = "device_id does not match file"
OUTSIDE_DAY = "timestamp outside the day"
OUT_OF_RANGE = "value out of range"
DUPLICATE = "duplicate reading"
UNPARSEABLE_VALUE = "unparseable value"
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
TOO_FEW_FIELDS = "truncated line"
TOO_MANY_FIELDS = "too many fields"
GARBLED_LINE = "garbled line"
HEADER_LINE_OTHER_COLUMNS = "header line with other columns"

# Lines the parser refuses that are not rows: counted in the report, not quarantined.
REPEATED_HEADER = "header"
BLANK_LINE = "blank"

FILE_DEVICE = "file_device"
WRONG_DEVICE = "wrong_device"
REASON = "reason"
DETAIL = "detail"

_BLANK = re.compile(r"[ \t]*")
_NOT_HEADER_CHARS = re.compile(r'[ \t"]')
_REPLACEMENT = "\ufffd"  # what a byte that is not UTF-8 decodes to


def _outside_range(sensor: str) -> pl.Expr:
    """True for a value outside the physical range, NaN and infinities included; NULL is fine."""
    value = pl.col(sensor)
    return value.is_nan() | (value < VALUE_MIN) | (value > VALUE_MAX)


def first_out_of_range_column(schema: ReadingsSchema) -> pl.Expr:
    """The name of the first sensor whose value is out of range, or NULL."""
    return pl.coalesce(
        [pl.when(_outside_range(s)).then(pl.lit(s)) for s in schema.sensors]
        + [pl.lit(None, pl.String)]
    )


def sensors_out_of_range(frame: pl.DataFrame, sensors: tuple[str, ...]) -> list[str]:
    """The sensors with a value out of range somewhere in `frame`, from column aggregates.

    A minimum below the range or a maximum above it (infinities too), or a NaN (which makes the
    sum NaN): three reductions per column, no mask. The row rule only has to look at these.
    """
    if not sensors:
        return []
    flags = frame.select(
        ((pl.col(s).min() < VALUE_MIN) | (pl.col(s).max() > VALUE_MAX) | pl.col(s).sum().is_nan())
        .fill_null(False)
        .alias(s)
        for s in sensors
    ).row(0)
    return [sensor for sensor, outside in zip(sensors, flags, strict=True) if outside]


def row_reason(schema: ReadingsSchema, day: date, suspects: list[str] | None = None) -> pl.Expr:
    """The first row rule a row breaks, or NULL: cheap enough for every row of the day.

    The frame needs the schema's columns plus `wrong_device` (the device id is NULL or not the
    one its file name declares). Duplicates are found afterwards, among the rows these rules let
    through, sorted by device, time and line order (`repeated_reading`). `suspects`: the only
    sensors of the frame that can be out of range (`sensors_out_of_range`); None: all of them.
    """
    ts = pl.col(TIMESTAMP_COLUMN)
    start = datetime.combine(day, datetime.min.time())
    end = start + timedelta(days=1)
    checked = schema.sensors if suspects is None else suspects
    out_of_range = (
        pl.any_horizontal(_outside_range(s) for s in checked) if checked else pl.lit(False)
    )
    return (
        pl.when(ts.is_null())
        .then(pl.lit(MISSING_TIMESTAMP))
        .when(pl.col(WRONG_DEVICE))
        .then(pl.lit(DEVICE_MISMATCH))
        .when((ts < start) | (ts >= end))
        .then(pl.lit(OUTSIDE_DAY))
        .when(out_of_range)
        .then(pl.lit(OUT_OF_RANGE))
        .alias(REASON)
    )


def rule_detail(schema: ReadingsSchema, day: date) -> pl.Expr:
    """The detail of `reason` (a row rule's), naming the value: for the few refused rows only.

    Needs the schema's columns, `reason` and `file_device`.
    """
    ts, dev, reason = pl.col(TIMESTAMP_COLUMN), pl.col(DEVICE_COLUMN), pl.col(REASON)
    return (
        pl.when(reason == DEVICE_MISMATCH)
        .then(
            pl.concat_str(
                pl.lit("device_id "),
                dev.fill_null("NULL"),
                pl.lit(" in file of "),
                pl.col(FILE_DEVICE),
            )
        )
        .when(reason == OUTSIDE_DAY)
        .then(pl.concat_str(ts.dt.to_string(TIMESTAMP_FORMAT), pl.lit(f" is not on {day}")))
        .when(reason == OUT_OF_RANGE)
        .then(
            pl.concat_str(
                first_out_of_range_column(schema),
                pl.lit(f" outside [{VALUE_MIN:g}, {VALUE_MAX:g}]"),
            )
        )
        .when(reason == DUPLICATE)
        .then(pl.concat_str(pl.lit("repeat of "), ts.dt.to_string(TIMESTAMP_FORMAT)))
        .alias(DETAIL)
    )


def repeated_reading(device: str) -> pl.Expr:
    """On good rows sorted by (device, timestamp, line order): every copy after the first.

    `device` is any column that identifies the device (its rank in the batch is cheaper to
    sort by than its id)."""
    ts, dev = pl.col(TIMESTAMP_COLUMN), pl.col(device)
    return ((dev == dev.shift(1)) & (ts == ts.shift(1))).fill_null(False)


@dataclass(frozen=True)
class Refusal:
    """A line that is not a row: skipped (`kind`: blank or header) or quarantined (`reason`)."""

    kind: str | None = None
    reason: str | None = None
    detail: str | None = None


Parsed = dict[str, object]


def _float(text: str) -> float | None:
    """A sensor field as the parser reads it: empty is NULL, else a number (NaN/inf included)."""
    field = text.strip(" \t")
    if not field:
        return None
    if "_" in field:  # Python reads 1_000; a device never writes it
        raise ValueError(field)
    return float(field)


def _timestamp(text: str) -> datetime | None:
    field = text.strip(" \t")
    return datetime.strptime(field, TIMESTAMP_FORMAT) if field else None


def _shown(field: str) -> str:
    return field if len(field) <= 40 else field[:37] + "..."


def refusal(line: str | None, schema: ReadingsSchema) -> Refusal | Parsed:
    """One flagged line: why it is refused, or its values when it is a row after all.

    The first column's error decides: a bad timestamp, then a garbled device id, then the first
    bad value, then a wrong field count; a header with other columns is named as such.
    """
    text = line or ""
    if _BLANK.fullmatch(text):
        return Refusal(kind=BLANK_LINE)
    bare = _NOT_HEADER_CHARS.sub("", text)
    if bare == schema.header:
        return Refusal(kind=REPEATED_HEADER)
    if bare.startswith(f"{TIMESTAMP_COLUMN},{DEVICE_COLUMN},"):
        return Refusal(reason=HEADER_LINE_OTHER_COLUMNS, detail=f"{bare.count(',') + 1} columns")
    fields = text.split(",")
    columns = len(schema.columns)
    row: Parsed = {}
    try:
        row[TIMESTAMP_COLUMN] = _timestamp(fields[0])
    except ValueError:
        detail = f"'{_shown(fields[0])}' is not a timestamp {TIMESTAMP_FORMAT}"
        return Refusal(reason=UNPARSEABLE_TIMESTAMP, detail=detail)
    if len(fields) > 1:
        device = fields[1].strip(" \t")
        if _REPLACEMENT in device:
            return Refusal(reason=GARBLED_LINE, detail="device_id is not UTF-8 text")
        row[DEVICE_COLUMN] = device or None
    for sensor, field in zip(schema.sensors, fields[2:], strict=False):
        try:
            row[sensor] = _float(field)
        except ValueError:
            detail = f"'{_shown(field)}' is not a number in {sensor}"
            return Refusal(reason=UNPARSEABLE_VALUE, detail=detail)
    if len(fields) != columns:
        reason = TOO_FEW_FIELDS if len(fields) < columns else TOO_MANY_FIELDS
        return Refusal(reason=reason, detail=f"expected {columns} fields, found {len(fields)}")
    return row
