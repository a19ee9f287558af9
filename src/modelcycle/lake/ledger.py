"""Every physical line of every ingested file is accounted for, or the day is not published.

CSV readers have dropped whole files without a trace (DuckDB's, the rows of a CRLF file), and a
report built from the parser's own counts still balances when that happens. So each file's
lines, counted on its bytes (`lake.rawtext`), must equal the header, the blank lines, the rows
written and the rows quarantined. A file that does not add up stops the ingest with an error
naming it, before anything is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from modelcycle.errors import ModelcycleError
from modelcycle.lake.rawtext import count_empty_lines
from modelcycle.lake.screening import ReadableLog

_NAMED_FILES = 3


@dataclass
class FileAccount:
    """What the parser and the rules made of one file's lines (the first line aside)."""

    written: int = 0
    quarantined: int = 0
    repeated_headers: int = 0
    blank: int = 0  # empty or whitespace-only lines


@dataclass(frozen=True)
class LineTotals:
    lines: int
    header_lines: int
    blank_lines: int


def _describe(log: ReadableLog, account: FileAccount, empty: int) -> str:
    return (
        f"{log.name} has {log.lines} lines but {1 + account.repeated_headers} header + "
        f"{account.blank + empty} blank + {account.written} written + "
        f"{account.quarantined} quarantined"
    )


def balance_lines(
    day: date, logs: list[ReadableLog], accounts: Mapping[str, FileAccount]
) -> LineTotals:
    """The day's line totals, or a ModelcycleError naming the files that do not add up.

    A parser that skips empty lines silently would leave them out of `blank`, so they are
    counted on the bytes too, but only for a file whose other counts fall short.
    """
    totals = LineTotals(0, 0, 0)
    mismatches: list[str] = []
    for log in logs:
        account = accounts.get(log.name, FileAccount())
        headers = 1 + account.repeated_headers
        accounted = headers + account.blank + account.written + account.quarantined
        empty = 0 if accounted == log.lines else count_empty_lines(log.parse_path.read_bytes())
        if accounted + empty != log.lines:
            mismatches.append(_describe(log, account, empty))
        totals = LineTotals(
            totals.lines + log.lines,
            totals.header_lines + headers,
            totals.blank_lines + account.blank + empty,
        )
    if mismatches:
        named = "; ".join(mismatches[:_NAMED_FILES])
        more = (
            f" (and {len(mismatches) - _NAMED_FILES} more)"
            if len(mismatches) > _NAMED_FILES
            else ""
        )
        raise ModelcycleError(
            f"ingest of {day} stopped, nothing published: the parser's counts disagree with the "
            f"lines in {len(mismatches)} file(s): {named}{more}"
        )
    return totals
