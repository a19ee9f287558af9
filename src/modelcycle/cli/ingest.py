"""`modelcycle ingest`: one day of raw logs into the lake."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelcycle.cli.context import (
    advance,
    lake_store,
    progress_bar,
    raw_store,
    settings_from,
    stdout,
)
from modelcycle.lake import layout


def ingest(
    ctx: typer.Context,
    date: Annotated[str, typer.Option("--date", help="Day to ingest, YYYY-MM-DD.")],
    raw: Annotated[
        str | None,
        typer.Option(
            "--raw",
            help="Raw area with the device logs (path, s3:// or gs://).",
            show_default="MODELCYCLE_RAW_URL",
        ),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option("--lake", help="Lake root to write to.", show_default="MODELCYCLE_LAKE_URL"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ingest report as JSON.")
    ] = False,
) -> None:
    """Validate a day of device logs and write it to the lake as one Parquet partition.

    Every file and row is checked (header, device id, timestamp inside the day, numeric values,
    physical range, duplicates). Bad rows and unreadable files go to the lake's quarantine with
    their reason; the JSON report at reports/ingest/date=DAY.json balances read = written +
    quarantined, checked against the lines counted in each file. CRLF/CR line endings, a BOM,
    quotes, blank lines and .csv.gz are read as plain logs (docs/lake.md). The partition appears
    whole or not at all; ingesting a day again replaces it.
    """
    from modelcycle.lake.ingest import IngestOptions, ingest_day  # DuckDB: slow to import

    settings = settings_from(ctx)
    day = layout.parse_day(date)
    raw_root, lake_root = raw_store(settings, raw), lake_store(settings, lake)
    options = IngestOptions.from_settings(settings)
    with progress_bar(f"ingest {day}", total=None) as progress:
        report = ingest_day(
            day,
            raw=raw_root,
            lake=lake_root,
            options=options,
            on_progress=lambda n: advance(progress, n),
        )
    if as_json:
        stdout.print_json(report.to_json())
        return
    table = Table(title=f"ingest {report.date}", show_header=False)
    table.add_row("files", f"{report.files_seen} seen, {report.files_quarantined} quarantined")
    for variant, count in report.file_variants.items():
        table.add_row("  " + variant, f"{count:,} file(s), read from a plain copy")
    table.add_row(
        "lines",
        f"{report.lines_read:,} in the files = {report.header_lines:,} header + "
        f"{report.blank_lines:,} blank + {report.rows_read:,} rows",
    )
    table.add_row(
        "rows",
        f"{report.rows_read:,} read = {report.rows_written:,} written + "
        f"{report.rows_quarantined:,} quarantined",
    )
    for reason, count in {**report.file_reasons, **report.row_reasons}.items():
        table.add_row("  " + reason, f"{count:,}")
    table.add_row("partition", report.partition_url)
    table.add_row("report", lake_root.url(layout.ingest_report(day)))
    table.add_row("seconds", f"{report.seconds:.1f}")
    stdout.print(table)
