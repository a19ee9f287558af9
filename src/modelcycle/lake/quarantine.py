"""The quarantine's tables, and the original text of lines read from a plain copy.

A refused line keeps its text as it is in the device's file: for a file whose fields were
unquoted before parsing (`lake.rawtext`), the parser saw the unquoted line, so the original is
read back from the file, for the refused lines only.
"""

from __future__ import annotations

from collections import defaultdict

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


def restore_original_lines(quarantine: pa.Table, logs: list[ReadableLog]) -> pa.Table:
    """`quarantine` with each refused line of an unquoted file as it is in the file."""
    unquoted = {log.name: log for log in logs if QUOTED_FIELDS in log.variants}
    if not unquoted:
        return quarantine
    rows = quarantine.to_pylist()
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row["file"] in unquoted and row["line"] is not None:
            wanted[row["file"]].add(row["line"])
    originals = {
        name: original_lines(name, unquoted[name].source, numbers)
        for name, numbers in wanted.items()
    }
    for row in rows:
        found = originals.get(row["file"], {}).get(row["line"])
        if found is not None:
            row["raw_line"] = found
    return pa.Table.from_pylist(rows, schema=QUARANTINE_ROWS_SCHEMA)
