"""The API's own predictions, judged like batch scores once their labels arrive.

The prediction log (serving/prediction_log.py) writes every answered request to the lake. Those
that name a device and a window (the device endpoint) can be labelled from the ledger; they are
evaluated for the version that served them when it is the champion being evaluated.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelcycle.features.windows import WINDOW_START
from modelcycle.lake import layout
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.storage import ObjectStore


def online_predictions(lake: ObjectStore, day: date, model: str, version: str) -> pa.Table | None:
    """The day's logged predictions of one model version that name a device-window."""
    keys = lake.glob(layout.predictions_glob(day))
    if not keys:
        return None
    table = pa.concat_tables(
        [pq.read_table(pa.BufferReader(lake.read_bytes(key))) for key in keys],
        promote_options="default",
    )
    mask = pc.and_(
        pc.and_(pc.equal(table.column("model"), model), pc.equal(table.column("version"), version)),
        pc.and_(pc.is_valid(table.column(DEVICE_COLUMN)), pc.is_valid(table.column(WINDOW_START))),
    )
    selected = table.filter(mask)
    return selected if selected.num_rows else None
