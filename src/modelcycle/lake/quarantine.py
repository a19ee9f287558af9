"""The quarantine's tables, and the original text of lines read from a plain copy.

A refused line keeps its text as it is in the device's file: for a file whose fields were
unquoted before parsing (`lake.rawtext`), the parser saw the unquoted line, so the original is
read back from the file, for the refused lines only.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from modelcycle.lake.rawtext import QUOTED_FIELDS, original_lines
from modelcycle.lake.screening import ReadableLog

QUARANTINE_ROWS_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw_line", pa.string()),
    ]
)
QUARANTINE_FILES_SCHEMA = pa.schema(
    [pa.field("file", pa.string()), pa.field("reason", pa.string())]
)


@dataclasses.dataclass(frozen=True, order=True)
class QuarantinedRow:
    file: str
    line: int
    reason: str
    detail: str | None
    raw_line: str

    def as_tuple(self) -> tuple[str, int, str, str | None, str]:
        return (self.file, self.line, self.reason, self.detail, self.raw_line)


def table_of(rows: Sequence[tuple[object, ...]], schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table, sorted, built through polars (pyarrow's from_pylist imports
    pandas, a second of start-up on every ingest)."""
    columns: dict[str, type[pl.DataType]] = {name: pl.String for name in schema.names}
    if "line" in columns:
        columns["line"] = pl.Int64
    frame = pl.DataFrame(sorted(rows), schema=columns, orient="row")
    return frame.to_arrow().cast(schema)


def restore_original_lines(
    quarantine: list[QuarantinedRow], logs: list[ReadableLog]
) -> list[QuarantinedRow]:
    """`quarantine` with each refused line of an unquoted file as it is in the file."""
    unquoted = {log.name: log for log in logs if QUOTED_FIELDS in log.variants}
    if not unquoted:
        return quarantine
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in quarantine:
        if row.file in unquoted:
            wanted[row.file].add(row.line)
    originals = {
        name: original_lines(name, unquoted[name].source, numbers)
        for name, numbers in wanted.items()
    }
    restored = []
    for row in quarantine:
        found = originals.get(row.file, {}).get(row.line)
        restored.append(row if found is None else dataclasses.replace(row, raw_line=found))
    return restored
