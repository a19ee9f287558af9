"""The fleet register (`devices.csv` in the raw area): which devices exist and who owns them."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.lake import layout
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

FLEET_COLUMNS = ("device_id", "customer_id", "site", "device_type")


def _register_bytes(raw: ObjectStore) -> bytes:
    if not raw.exists(layout.FLEET_FILE):
        raise DataNotFoundError(f"no fleet register at {raw.url(layout.FLEET_FILE)}")
    return raw.read_bytes(layout.FLEET_FILE)


def read_fleet(raw: ObjectStore) -> pa.Table:
    """The register, typed as strings; a clear error when it is missing or malformed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = _register_bytes(raw)
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(FLEET_COLUMNS, pa.string()),
                include_columns=list(FLEET_COLUMNS),
            ),
        )
    except (pa.ArrowInvalid, KeyError) as error:
        reason = str(error).splitlines()[0]
        raise InvalidInputError(
            f"{raw.url(layout.FLEET_FILE)} is not a valid register: {reason}"
        ) from error


def device_ids(raw: ObjectStore) -> frozenset[str]:
    """The register's device ids, read with the standard library: the API checks ids from its
    start, before pyarrow is imported."""
    reader = csv.DictReader(io.StringIO(_register_bytes(raw).decode("utf-8", errors="replace")))
    missing = [c for c in FLEET_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidInputError(
            f"{raw.url(layout.FLEET_FILE)} is not a valid register: no column {missing[0]!r}"
        )
    try:
        return frozenset(row["device_id"] for row in reader)
    except csv.Error as error:
        raise InvalidInputError(
            f"{raw.url(layout.FLEET_FILE)} is not a valid register: {error}"
        ) from error
