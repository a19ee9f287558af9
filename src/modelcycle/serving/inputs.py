"""Turning validated request bodies into model inputs, with errors that name the field.

The body's types are checked by pydantic; what depends on the served model (row length, feature
names, sensors) is checked here, against the `LoadedModel` the request holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from modelcycle.errors import InvalidInputError
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.lake.schema import DEVICE_COLUMN, TIMESTAMP_COLUMN
from modelcycle.serving.schemas import DeviceReadings, PredictRequest

if TYPE_CHECKING:
    import pyarrow as pa

SHOWN_NAMES = 5


class RequestTooLargeError(InvalidInputError):
    """More rows or readings than one request may carry."""


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" (and {more} more)" if more > 0 else "")


def check_row_count(n_rows: int, max_rows: int, field: str) -> None:
    if n_rows > max_rows:
        raise RequestTooLargeError(f"{field}: {n_rows} rows, at most {max_rows} per request")


def feature_matrix(
    request: PredictRequest, features: tuple[str, ...], *, max_rows: int
) -> NDArray[np.float32]:
    """A [rows, n_features] float32 matrix; null becomes NaN, the models' missing value."""
    n_features = len(features)
    if request.instances is not None:
        check_row_count(len(request.instances), max_rows, "instances")
        for index, row in enumerate(request.instances):
            if len(row) != n_features:
                raise InvalidInputError(
                    f"instances[{index}]: {len(row)} values, the model expects {n_features} "
                    "(see `features` in GET /v1/models)"
                )
        return np.array(request.instances, dtype=np.float32)
    records = request.records or []
    check_row_count(len(records), max_rows, "records")
    expected = set(features)
    for index, record in enumerate(records):
        if record.keys() != expected:
            missing = [name for name in features if name not in record]
            unknown = sorted(set(record) - expected)
            problem = f"missing {_names(missing)}" if missing else f"unknown {_names(unknown)}"
            raise InvalidInputError(f"records[{index}]: {problem}")
    return np.array([[record[name] for name in features] for record in records], dtype=np.float32)


def utc_times(timestamps: list[datetime]) -> list[datetime]:
    """Naive UTC times (naive input is taken as UTC); one that leaves the calendar is a 422."""
    converted = []
    for index, moment in enumerate(timestamps):
        if moment.tzinfo is None:
            converted.append(moment)
            continue
        try:
            converted.append(moment.astimezone(UTC).replace(tzinfo=None))
        except OverflowError:  # 0001-01-01T00:30+01:00 is in year 0 in UTC
            raise InvalidInputError(
                f"timestamps[{index}]: {moment.isoformat()} is outside years 1 to 9999 in UTC"
            ) from None
    if len(set(converted)) != len(converted):
        raise InvalidInputError("timestamps: the same time appears twice")
    return converted


def readings_table(
    device_id: str, readings: DeviceReadings, sensors: tuple[str, ...], *, max_readings: int
) -> pa.Table:
    """One device's readings as the lake stores them, so the training feature code applies.

    Values are already in the physical range (the schema checks it, in pydantic-core).
    """
    n = len(readings.timestamps)
    check_row_count(n, max_readings, "timestamps")
    timestamps = utc_times(readings.timestamps)
    missing = [sensor for sensor in sensors if sensor not in readings.values]
    if missing:
        raise InvalidInputError(f"values: missing sensors {_names(missing)}")
    unknown = sorted(set(readings.values) - set(sensors))
    if unknown:
        raise InvalidInputError(f"values: unknown sensors {_names(unknown)}")
    with FIRST_USE_IMPORTS:  # the first device request, not the API's start, imports pyarrow
        import pyarrow as pa

    columns: dict[str, pa.Array] = {
        TIMESTAMP_COLUMN: pa.array(timestamps, type=pa.timestamp("us")),
        DEVICE_COLUMN: pa.array([device_id] * n, type=pa.string()),
    }
    for sensor in sensors:
        values = readings.values[sensor]
        if len(values) != n:
            raise InvalidInputError(f"values.{sensor}: {len(values)} readings for {n} timestamps")
        columns[sensor] = pa.array(values, type=pa.float32())
    return pa.table(columns)
