"""A batch of logs parsed by polars: one fast typed pass, then a careful look at flagged lines.

The fast pass is the CSV reader the bare-polars floor uses, with the day's schema, no quoting,
every physical line kept as a row (a blank line is a row of NULLs) and numbered from its file.
Its lenient mode never fails a file: a field it cannot read becomes NULL and extra fields are
cut. So a row is flagged when any field is NULL or the timestamp does not parse, and each flagged
line is read again from the text and judged by `rules.refusal` (an empty field is a missing
reading; anything else is refused with the reason of its first bad column). Extra fields leave
no NULL, so each file's commas (counted on its bytes at screening) must add up: a file where
they do not has every line's fields counted. Most files have no flagged line and are never read
twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from modelcycle.lake.rules import FILE_DEVICE, Refusal, refusal
from modelcycle.lake.schema import DEVICE_COLUMN, TIMESTAMP_COLUMN, TIMESTAMP_FORMAT, ReadingsSchema
from modelcycle.lake.screening import ReadableLog

FILE = "file_index"
LINE = "line"
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RefusedLine:
    file: int
    line: int
    reason: str
    detail: str | None


@dataclass
class ParsedBatch:
    """The rows of a batch (schema columns + file index, line, file device) and what was not."""

    rows: pl.DataFrame
    refused: list[RefusedLine]
    skipped: Counter[tuple[int, str]]  # (file index, blank or header) -> lines
    texts: dict[int, list[bytes]] = field(default_factory=dict)

    def line_text(self, logs: list[ReadableLog], file: int, line: int) -> str:
        """A line of a file as the parser saw it (files are read at most once per batch)."""
        lines = _file_lines(self.texts, logs[file].parse_path, file)
        return lines[line - 1].decode("utf-8", errors="replace") if line <= len(lines) else ""


def _file_lines(cache: dict[int, list[bytes]], path: Path, file: int) -> list[bytes]:
    if file not in cache:
        cache[file] = path.read_bytes().split(b"\n")
    return cache[file]


def _scan(log: ReadableLog, index: int, schema: ReadingsSchema) -> pl.LazyFrame:
    types: dict[str, pl.DataType] = {TIMESTAMP_COLUMN: pl.String(), DEVICE_COLUMN: pl.String()}
    types.update({sensor: pl.Float32() for sensor in schema.sensors})
    return (
        pl.scan_csv(
            log.parse_path,
            schema=types,
            has_header=False,
            skip_lines=1,  # the header, checked at screening (spaces may surround its names)
            quote_char=None,
            ignore_errors=True,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
        .with_row_index(LINE, offset=2)  # the header is line 1
        .with_columns(
            pl.lit(index, pl.UInt32).alias(FILE), pl.lit(log.device_id).alias(FILE_DEVICE)
        )
    )


def _typed(frame: pl.DataFrame, schema: ReadingsSchema) -> pl.DataFrame:
    """The timestamp parsed and the device id trimmed (`ts, device-0001 ,...` is that device)."""
    return frame.with_columns(
        pl.col(TIMESTAMP_COLUMN).str.strptime(pl.Datetime("us"), TIMESTAMP_FORMAT, strict=False),
        pl.col(DEVICE_COLUMN).str.strip_chars(" \t"),
    )


def _flag(schema: ReadingsSchema) -> pl.Expr:
    """Rows the fast pass may have misread: any NULL, or a device id that was not UTF-8."""
    return pl.any_horizontal(pl.col(c).is_null() for c in schema.columns) | pl.col(
        DEVICE_COLUMN
    ).str.contains(_REPLACEMENT, literal=True)


def _extra_field_lines(
    logs: list[ReadableLog],
    schema: ReadingsSchema,
    clean_counts: dict[int, int],
    flagged: dict[int, list[int]],
    texts: dict[int, list[bytes]],
) -> dict[int, list[int]]:
    """Lines the fast pass read as clean that have too many fields, per file.

    A clean line has at least the schema's commas; if a file's commas exceed the header's, the
    flagged lines' and the schema's per clean line, some clean line has more, and that file's
    lines are all counted.
    """
    expected = len(schema.columns) - 1
    extra: dict[int, list[int]] = {}
    for index, log in enumerate(logs):
        clean = clean_counts.get(index, 0)
        if log.commas >= 0:
            lines = _file_lines(texts, log.parse_path, index) if flagged.get(index) else []
            known = expected + sum(lines[n - 1].count(b",") for n in flagged.get(index, []))
            if log.commas == known + clean * expected:
                continue
        lines = _file_lines(texts, log.parse_path, index)
        skip = set(flagged.get(index, []))
        found = [
            number
            for number, text in enumerate(lines[1:], start=2)
            if number not in skip and text.count(b",") > expected
        ]
        if found:
            extra[index] = found
    return extra


def _judge(
    logs: list[ReadableLog],
    schema: ReadingsSchema,
    lines: Iterable[tuple[int, int]],
    texts: dict[int, list[bytes]],
) -> tuple[list[dict[str, object]], list[RefusedLine], Counter[tuple[int, str]]]:
    repaired: list[dict[str, object]] = []
    refused: list[RefusedLine] = []
    skipped: Counter[tuple[int, str]] = Counter()
    for file, line in lines:
        text = _file_lines(texts, logs[file].parse_path, file)[line - 1]
        verdict = refusal(text.decode("utf-8", errors="replace"), schema)
        if isinstance(verdict, Refusal):
            if verdict.kind is not None:
                skipped[(file, verdict.kind)] += 1
            else:
                refused.append(RefusedLine(file, line, verdict.reason or "", verdict.detail))
        else:
            repaired.append({**verdict, LINE: line, FILE: file, FILE_DEVICE: logs[file].device_id})
    return repaired, refused, skipped


def parse_batch(logs: list[ReadableLog], schema: ReadingsSchema) -> ParsedBatch:
    """Every line of `logs` as a typed row, a refused line or a skipped one (blank, header)."""
    frame = _typed(
        pl.concat([_scan(log, i, schema) for i, log in enumerate(logs)]).collect(), schema
    )
    flag = frame.select(_flag(schema)).to_series()
    flagged_rows = frame.filter(flag).select(FILE, LINE)
    clean = frame.filter(~flag)
    flagged: dict[int, list[int]] = {}
    for file, line in flagged_rows.iter_rows():
        flagged.setdefault(file, []).append(line)
    clean_counts = dict(clean.group_by(FILE).len().iter_rows())
    texts: dict[int, list[bytes]] = {}
    extra = _extra_field_lines(logs, schema, clean_counts, flagged, texts)
    if extra:
        ragged = pl.DataFrame(
            [(f, n) for f, numbers in extra.items() for n in numbers],
            schema={FILE: pl.UInt32, LINE: pl.UInt32},
            orient="row",
        )
        clean = clean.join(ragged, on=[FILE, LINE], how="anti", maintain_order="left")
        for file, numbers in extra.items():
            flagged.setdefault(file, []).extend(numbers)
    to_judge = [(f, n) for f in sorted(flagged) for n in sorted(flagged[f])]
    repaired, refused, skipped = _judge(logs, schema, to_judge, texts)
    if repaired:
        extra_rows = pl.from_dicts(repaired, schema=clean.schema)
        clean = pl.concat([clean, extra_rows])
    return ParsedBatch(rows=clean, refused=refused, skipped=skipped, texts=texts)
