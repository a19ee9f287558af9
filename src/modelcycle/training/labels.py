"""Labels from the maintenance ledger, which arrives late, as in the field.

A device-window is faulty when it overlaps a fault episode: from `fault_start` until a technician
confirmed it (`confirmed_at`). Only episodes confirmed by the training cut-off count, because
that is all that would be known then; a fault still undetected at the cut-off looks healthy.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.csv as pacsv

from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.features.windows import WINDOW_MINUTES, WINDOW_START
from modelcycle.lake import layout
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.storage import ObjectStore, duck

LEDGER_COLUMNS = ("device_id", "fault_start", "confirmed_at", "fault_type")
LABEL_COLUMN = "faulty"


def read_ledger(raw: ObjectStore) -> pa.Table:
    """The maintenance ledger from the raw area, typed; a clear error if missing or malformed."""
    if not raw.exists(layout.LEDGER_FILE):
        raise DataNotFoundError(f"no maintenance ledger at {raw.url(layout.LEDGER_FILE)}")
    data = raw.read_bytes(layout.LEDGER_FILE)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "device_id": pa.string(),
                    "fault_start": pa.timestamp("us"),
                    "confirmed_at": pa.timestamp("us"),
                    "fault_type": pa.string(),
                },
                include_columns=list(LEDGER_COLUMNS),
            ),
        )
    except (pa.ArrowInvalid, KeyError) as error:
        reason = str(error).splitlines()[0]
        raise InvalidInputError(
            f"{raw.url(layout.LEDGER_FILE)} is not a valid ledger: {reason}"
        ) from error
    return table


def label_windows(windows: pa.Table, ledger: pa.Table, known_at: datetime) -> pa.Array:
    """1 for each window overlapping a fault confirmed by `known_at`, else 0 (window order kept)."""
    con = duck.connect()
    try:
        con.register("windows", windows.select([DEVICE_COLUMN, WINDOW_START]))
        con.register("ledger", ledger)
        result = con.sql(
            f"""
            SELECT CASE WHEN EXISTS (
                SELECT 1 FROM ledger l
                WHERE l.device_id = w.{DEVICE_COLUMN}
                  AND l.confirmed_at <= ?
                  AND l.fault_start < w.{WINDOW_START} + INTERVAL {WINDOW_MINUTES} MINUTE
                  AND w.{WINDOW_START} < l.confirmed_at
            ) THEN 1 ELSE 0 END AS {LABEL_COLUMN}
            FROM (SELECT *, row_number() OVER () AS position FROM windows) w
            ORDER BY position
            """,
            params=[known_at],
        ).to_arrow_table()
    finally:
        con.close()
    labels: pa.Array = result.column(LABEL_COLUMN).combine_chunks()
    return labels
