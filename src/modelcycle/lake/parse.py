"""A batch of logs parsed by polars: one fast typed pass, then a careful look at flagged lines.

The fast pass is the CSV reader the bare-polars floor uses, with the day's schema, no quoting,
every physical line kept as a row (a blank line is a row of NULLs) and numbered from its file.
Its lenient mode never fails a file: a field it cannot read becomes NULL and extra fields are
cut. So a row is flagged when any field is NULL or the timestamp does not parse, and each flagged
line is read again from the text and judged by `rules.refusal` (an empty field is a missing
reading; anything else is refused with the reason of its first bad column). Extra fields leave
no NULL, so each file's commas (counted on its bytes at screening) must add up: a file where
they do not has every line's fields counted. Most files have no flagged line and are never read
twice; the wide rows are never copied here (flagged ones are only marked).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from modelcycle.lake.rules import WRONG_DEVICE, Refusal, refusal
from modelcycle.lake.schema import (
    DEVICE_COLUMN,
    TIMESTAMP_COLUMN,
    TIMESTAMP_FORMAT,
    ReadingsSchema,
)
from modelcycle.lake.screening import ReadableLog

FILE = "file_index"
LINE = "line"
DEVICE_RANK = "device_rank"  # the device's place in the batch: sorting by it sorts by device_id
FLAGGED = "flagged"  # the line is judged in Python: its row here is not used
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RefusedLine:
    file: int
    line: int
    reason: str
    detail: str | None


class _Text:
    """A file's lines by number (1-based), cut out where screening found its newlines.

    Only the lines asked for are read; the whole text is read for `lines()` (a file whose
    fields must all be counted) or when the newlines are not known.
    """

    def __init__(self, path: Path, newlines: npt.NDArray[np.int64] | None) -> None:
        self.path = path
        self._data: bytes | None = None
        self._newlines = newlines

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.path.read_bytes()
        return self._data

    @property
    def newlines(self) -> npt.NDArray[np.int64]:
        if self._newlines is None:
            self._newlines = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 0x0A)
        return self._newlines

    def line(self, number: int) -> bytes:
        ends = self.newlines
        start = int(ends[number - 2]) + 1 if number > 1 else 0
        end = int(ends[number - 1]) if number - 1 < ends.size else None
        if self._data is not None:
            return self._data[start:end]
        with self.path.open("rb") as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(end - start)

    def lines(self) -> list[bytes]:
        return self.data.split(b"\n")


@dataclass
class ParsedBatch:
    """Rows (schema columns + file, line, device rank, flags) and the lines that are not rows."""

    logs: list[ReadableLog]
    rows: pl.DataFrame
    refused: list[RefusedLine]
    skipped: Counter[tuple[int, str]]  # (file index, blank or header) -> lines
    texts: dict[int, _Text] = field(default_factory=dict)

    def text(self, file: int) -> _Text:
        """A file's text, read at most once per batch."""
        if file not in self.texts:
            log = self.logs[file]
            self.texts[file] = _Text(log.parse_path, log.newlines)
        return self.texts[file]

    def line_text(self, file: int, line: int) -> str:
        """A line of a file as the parser saw it."""
        return self.text(file).line(line).decode("utf-8", errors="replace")


def _scan(log: ReadableLog, index: int, rank: int, schema: ReadingsSchema) -> pl.LazyFrame:
    types: dict[str, pl.DataType] = {TIMESTAMP_COLUMN: pl.String(), DEVICE_COLUMN: pl.String()}
    types.update({sensor: pl.Float32() for sensor in schema.sensors})
    device = pl.col(DEVICE_COLUMN)
    return (
        pl.scan_csv(
            log.parse_path,
            # The header (checked at screening; spaces may surround its names) sets the field
            # count, so a short first row cannot; the day's names and types replace its own.
            has_header=True,
            new_columns=list(types),
            schema_overrides=types,
            quote_char=None,
            ignore_errors=True,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
        .with_columns(
            pl.col(TIMESTAMP_COLUMN).str.strptime(
                pl.Datetime("us"), TIMESTAMP_FORMAT, strict=False
            ),
            # `ts, device-0001 ,...` is that device
            device.str.strip_chars(" \t"),
            pl.lit(index, pl.UInt32).alias(FILE),
            pl.lit(rank, pl.UInt32).alias(DEVICE_RANK),
        )
        .with_columns((device != log.device_id).fill_null(True).alias(WRONG_DEVICE))
    )


def _flag(rows: pl.DataFrame, schema: ReadingsSchema) -> pl.Expr:
    """A NULL, or a device id that was not UTF-8: the fast pass may have misread the line.

    Only columns with a NULL in the batch can flag a row (a column knows its null count
    without a scan).
    """
    with_nulls = [c for c in schema.columns if rows.get_column(c).null_count()]
    misread = pl.col(DEVICE_COLUMN).str.contains(_REPLACEMENT, literal=True)
    if with_nulls:
        misread = misread | pl.any_horizontal(pl.col(c).is_null() for c in with_nulls)
    return misread.alias(FLAGGED)


def _ranks(logs: list[ReadableLog]) -> list[int]:
    """Each file's device rank; the batch is in name order, a device's files side by side."""
    ranks: list[int] = []
    for i, log in enumerate(logs):
        same = i > 0 and logs[i - 1].device_id == log.device_id
        ranks.append(ranks[-1] if same else (ranks[-1] + 1 if ranks else 0))
    return ranks


def _extra_field_lines(
    batch: ParsedBatch,
    schema: ReadingsSchema,
    clean_counts: dict[int, int],
    flagged: dict[int, list[int]],
) -> dict[int, list[int]]:
    """Lines the fast pass read as clean that have too many fields, per file.

    A clean line has at least the schema's commas; if a file's commas exceed the header's, the
    flagged lines' and the schema's per clean line, some clean line has more, and that file's
    lines are all counted.
    """
    expected = len(schema.columns) - 1
    extra: dict[int, list[int]] = {}
    for index, log in enumerate(batch.logs):
        numbers = flagged.get(index, [])
        if log.commas >= 0:
            text = batch.text(index) if numbers else None
            known = sum(text.line(n).count(b",") for n in numbers) if text else 0
            if log.commas == expected + known + clean_counts.get(index, 0) * expected:
                continue
        skip = set(numbers)
        found = [
            number
            for number, line in enumerate(batch.text(index).lines()[1:], start=2)
            if number not in skip and line.count(b",") > expected
        ]
        if found:
            extra[index] = found
    return extra


def _judge(batch: ParsedBatch, schema: ReadingsSchema, flagged: dict[int, list[int]]) -> None:
    """Each flagged line: a repaired row (appended to the rows), refused, or skipped."""
    repaired: list[dict[str, object]] = []
    ranks = _ranks(batch.logs)
    for file in sorted(flagged):
        device = batch.logs[file].device_id
        for line in sorted(flagged[file]):
            verdict = refusal(batch.line_text(file, line), schema)
            if not isinstance(verdict, Refusal):
                extra = {FILE: file, LINE: line, DEVICE_RANK: ranks[file], FLAGGED: False}
                repaired.append(
                    {**verdict, **extra, WRONG_DEVICE: verdict.get(DEVICE_COLUMN) != device}
                )
            elif verdict.kind is not None:
                batch.skipped[(file, verdict.kind)] += 1
            else:
                batch.refused.append(RefusedLine(file, line, verdict.reason or "", verdict.detail))
    if repaired:
        rows = pl.from_dicts(repaired, schema=batch.rows.schema)
        batch.rows = pl.concat([batch.rows, rows], rechunk=False)


def parse_batch(logs: list[ReadableLog], schema: ReadingsSchema) -> ParsedBatch:
    """Every line of `logs` as a typed row, a refused line or a skipped one (blank, header)."""
    ranks = _ranks(logs)
    scans = [_scan(log, i, ranks[i], schema) for i, log in enumerate(logs)]
    # Each file collected on its own, then numbered: a row index inside the lazy scan made the
    # reader number rows as it went and cost as much again as the parse (0.6 s per 100 files).
    frames = pl.collect_all(scans)
    numbered = [frame.with_row_index(LINE, offset=2) for frame in frames]  # the header is line 1
    rows = pl.concat(numbered)
    rows = rows.with_columns(_flag(rows, schema))
    batch = ParsedBatch(logs, rows, [], Counter())
    marks = batch.rows.select(FILE, LINE, FLAGGED)
    flagged: dict[int, list[int]] = {}
    for file, line in marks.filter(pl.col(FLAGGED)).select(FILE, LINE).iter_rows():
        flagged.setdefault(file, []).append(line)
    clean_counts = dict(marks.filter(~pl.col(FLAGGED)).group_by(FILE).len().iter_rows())
    extra = _extra_field_lines(batch, schema, clean_counts, flagged)
    if extra:
        keys = [f * 2**32 + n for f, numbers in extra.items() for n in numbers]
        ragged = (pl.col(FILE).cast(pl.UInt64) * 2**32 + pl.col(LINE)).is_in(keys)
        batch.rows = batch.rows.with_columns((pl.col(FLAGGED) | ragged).alias(FLAGGED))
        for file, numbers in extra.items():
            flagged.setdefault(file, []).extend(numbers)
    _judge(batch, schema, flagged)
    return batch
