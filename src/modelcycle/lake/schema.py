"""The schema of the readings table and of the raw logs it is ingested from.

A raw log is `timestamp,device_id,s000,s001,...`; the lake stores the same columns typed: a
timestamp, the device id, and one float32 per sensor (3 decimals of a physical unit fit float32's
7 significant digits). The sensor set is read off the day's headers, so a fleet with another
sensor count needs no code change.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the column names are read where pyarrow is not needed (the API's start)
    import pyarrow as pa

TIMESTAMP_COLUMN = "timestamp"
DEVICE_COLUMN = "device_id"
SENSOR_PATTERN = re.compile(r"^s\d{3}$")
DEVICE_FILE_PATTERN = re.compile(r"^(device-\d{4})\.csv(?:\.gz)?$")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# Physical range a sensor can report; values outside are error codes (e.g. -9999) or corruption.
VALUE_MIN = -1000.0
VALUE_MAX = 1000.0


@dataclass(frozen=True)
class ReadingsSchema:
    """Column names and types of one day's readings."""

    sensors: tuple[str, ...]

    @property
    def header(self) -> str:
        return ",".join((TIMESTAMP_COLUMN, DEVICE_COLUMN, *self.sensors))

    @property
    def columns(self) -> tuple[str, ...]:
        return (TIMESTAMP_COLUMN, DEVICE_COLUMN, *self.sensors)

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        fields = [
            pa.field(TIMESTAMP_COLUMN, pa.timestamp("us"), nullable=False),
            pa.field(DEVICE_COLUMN, pa.string(), nullable=False),
        ]
        fields += [pa.field(name, pa.float32()) for name in self.sensors]
        return pa.schema(fields)


def schema_from_header(header: str) -> ReadingsSchema | None:
    """The schema a header line declares, or None when it is not a readings header."""
    names = header.strip().split(",")
    if len(names) < 3 or names[0] != TIMESTAMP_COLUMN or names[1] != DEVICE_COLUMN:
        return None
    sensors = tuple(names[2:])
    if not all(SENSOR_PATTERN.match(name) for name in sensors) or len(set(sensors)) != len(sensors):
        return None
    return ReadingsSchema(sensors=sensors)


def majority_schema(headers: list[str]) -> ReadingsSchema | None:
    """The schema most of the day's files declare: one odd file must not redefine the day."""
    schemas = [schema for schema in map(schema_from_header, headers) if schema is not None]
    if not schemas:
        return None
    return Counter(schemas).most_common(1)[0][0]
