"""The fleet register (`devices.csv` in the raw area): which devices exist and who owns them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.lake import layout
from modelcycle.storage import ObjectStore

FLEET_COLUMNS = ("device_id", "customer_id", "site", "device_type")


def read_fleet(raw: ObjectStore) -> pa.Table:
    """The register, typed as strings; a clear error when it is missing or malformed."""
    if not raw.exists(layout.FLEET_FILE):
        raise DataNotFoundError(f"no fleet register at {raw.url(layout.FLEET_FILE)}")
    try:
        return pacsv.read_csv(
            pa.BufferReader(raw.read_bytes(layout.FLEET_FILE)),
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
    return frozenset(read_fleet(raw).column("device_id").to_pylist())
