"""Ingest one day of raw device logs into a validated, typed, sorted Parquet partition.

Both stores are checked first, so an unreachable one fails in a second, not after the parse.
Files are screened (`lake.screening`): text variants a CSV reader misreads get a plain copy.
polars then parses the files with the day's fixed schema (`lake.parse`): the same reader as a
bare scan_csv, so validation costs little on top of it. A line it cannot read is quarantined
with its text and line number instead of failing the day. Parsed rows then pass the rules of
`lake.rules`, as polars expressions on the batch. Files are taken in device order, a batch at a
time, which bounds memory and keeps the output sorted by (device_id, timestamp) without a global
sort. Before anything is published, every file's physical lines must add up to what was
written, quarantined or skipped (`lake.ledger`).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from modelcycle.errors import DataNotFoundError, ModelcycleError, StorageError
from modelcycle.lake import layout
from modelcycle.lake.ledger import FileAccount, balance_lines
from modelcycle.lake.parse import DEVICE_RANK, FILE, FLAGGED, LINE, ParsedBatch
from modelcycle.lake.pipeline import BackgroundWriter, parsed_ahead, take_rows
from modelcycle.lake.quarantine import (
    QUARANTINE_FILES_SCHEMA,
    QUARANTINE_ROWS_SCHEMA,
    QuarantinedRow,
    restore_original_lines,
    table_of,
)
from modelcycle.lake.report import IngestReport
from modelcycle.lake.rules import (
    BLANK_LINE,
    DUPLICATE,
    FILE_DEVICE,
    REASON,
    REPEATED_HEADER,
    repeated_reading,
    row_reason,
    rule_detail,
    sensors_out_of_range,
)
from modelcycle.lake.schema import DEVICE_COLUMN, TIMESTAMP_COLUMN, ReadingsSchema
from modelcycle.lake.screening import (
    RawFile,
    ReadableLog,
    RejectedFile,
    ScreenedDay,
    screen_files,
)
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:  # pydantic's import is half a second of every ingest process
    from modelcycle.settings import Settings

log = structlog.get_logger(__name__)

ProgressCallback = Callable[[int], None]
ROW = "row"
REPEAT = "repeat"


@dataclass(frozen=True)
class IngestOptions:
    batch_files: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        """As configured (MODELCYCLE_INGEST_*): the CLI and the Dagster asset ingest alike."""
        return cls(batch_files=settings.ingest_batch_files)


def _fetch_raw_files(raw: ObjectStore, day: date, scratch: Path) -> list[RawFile]:
    """The day's files as local paths (downloaded first when the raw area is remote)."""
    folder = layout.raw_day_folder(day)
    if not raw.exists(folder):
        raise DataNotFoundError(f"no device logs for {day} under {raw.url(folder)}")
    keys = [key for key in raw.glob(f"{folder}/*") if not Path(key).name.startswith(".")]
    if not keys:
        raise DataNotFoundError(f"no device logs for {day} under {raw.url(folder)}")
    if raw.is_local:
        return [RawFile(Path(key).name, Path(raw.path(key))) for key in keys]
    local_folder = scratch / "raw"
    files = []
    for key in keys:
        target = local_folder / Path(key).name
        raw.get_file(key, target)
        files.append(RawFile(target.name, target))
    return files


class _BatchIngester:
    """Runs the batches of one day and collects the quarantine and the per-file counts."""

    def __init__(self, schema: ReadingsSchema, day: date):
        self.schema = schema
        self.day = day
        self.detail = rule_detail(schema, day)
        self.quarantine: list[QuarantinedRow] = []
        self.written: Counter[str] = Counter()
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.devices: set[str] = set()

    def run_batch(self, parsed: ParsedBatch, writer: BackgroundWriter) -> None:
        files = parsed.logs
        wide = parsed.rows
        # The rules and the order on narrow columns; the wide rows are copied once, when taken.
        # Only the sensors with an out-of-range value somewhere in the batch are judged row by
        # row: a batch's 100 range checks per row cost more than its column aggregates.
        reason = row_reason(self.schema, self.day, sensors_out_of_range(wide, self.schema.sensors))
        keys = (
            wide.select(FILE, LINE, DEVICE_RANK, TIMESTAMP_COLUMN, FLAGGED, reason)
            .with_row_index(ROW)
            .filter(~pl.col(FLAGGED))
        )
        good = (
            keys.filter(pl.col(REASON).is_null())
            .sort(DEVICE_RANK, TIMESTAMP_COLUMN, FILE, LINE)
            .with_columns(repeated_reading(DEVICE_RANK).alias(REPEAT))
        )
        refused = pl.concat(
            [
                keys.filter(pl.col(REASON).is_not_null()).select(ROW, REASON),
                good.filter(pl.col(REPEAT)).select(ROW, pl.lit(DUPLICATE).alias(REASON)),
            ]
        )
        self._quarantine(parsed, wide, refused)
        accepted = take_rows(
            wide.select(self.schema.columns), good.filter(~pl.col(REPEAT)).get_column(ROW)
        )
        written = good.filter(~pl.col(REPEAT)).group_by(FILE).len()
        for file, count in written.iter_rows():
            self.written[files[file].name] += int(count)
        for (file, kind), count in parsed.skipped.items():
            self.skipped[(files[file].name, kind)] += count
        if accepted.height:
            writer.write(accepted.to_arrow().cast(self.schema.arrow_schema()))
        self.devices.update(accepted.get_column(DEVICE_COLUMN).unique().to_list())

    def _quarantine(self, parsed: ParsedBatch, wide: pl.DataFrame, refused: pl.DataFrame) -> None:
        """The refused rows with their details, and the lines the parser refused."""
        files = parsed.logs
        devices = pl.Series([log.device_id for log in files], dtype=pl.String)
        rows = wide.select(pl.all().gather(refused.get_column(ROW)))
        rows = rows.with_columns(
            refused.get_column(REASON),
            devices.gather(rows.get_column(FILE)).alias(FILE_DEVICE),
        )
        details = rows.select(FILE, LINE, REASON, self.detail)
        for file, line, reason, detail in details.iter_rows():
            text = parsed.line_text(file, line)
            self.quarantine.append(QuarantinedRow(files[file].name, line, reason, detail, text))
        for refusal in parsed.refused:
            text = parsed.line_text(refusal.file, refusal.line)
            name = files[refusal.file].name
            row = QuarantinedRow(name, refusal.line, refusal.reason, refusal.detail, text)
            self.quarantine.append(row)

    def accounts(self) -> dict[str, FileAccount]:
        """What became of each file's lines, for the ledger."""
        accounts = {name: FileAccount(written=count) for name, count in self.written.items()}
        for name, count in Counter(row.file for row in self.quarantine).items():
            accounts.setdefault(name, FileAccount()).quarantined = count
        for (name, kind), count in self.skipped.items():
            account = accounts.setdefault(name, FileAccount())
            if kind == REPEATED_HEADER:
                account.repeated_headers = count
            elif kind == BLANK_LINE:
                account.blank = count
        return accounts


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _publish(
    lake: ObjectStore,
    day: date,
    scratch: Path,
    quarantined: list[QuarantinedRow],
    rejected: list[RejectedFile],
    report: IngestReport,
) -> None:
    """Quarantine first, then the partition, then the report: each one atomic."""
    rows_path = scratch / "quarantine-rows.parquet"
    files_path = scratch / "quarantine-files.parquet"
    _write_parquet(table_of([r.as_tuple() for r in quarantined], QUARANTINE_ROWS_SCHEMA), rows_path)
    files = [(r.name, r.reason) for r in rejected]
    _write_parquet(table_of(files, QUARANTINE_FILES_SCHEMA), files_path)
    lake.put_file(rows_path, layout.quarantine_rows(day))
    lake.put_file(files_path, layout.quarantine_files(day))
    lake.put_file(scratch / "readings.parquet", layout.readings_partition(day), move=True)
    lake.delete(layout.features_folder(day))  # built from the old readings: rebuilt on demand
    lake.write_bytes(layout.ingest_report(day), report.to_json().encode())


def _check_reachable(day: date, raw: ObjectStore, lake: ObjectStore) -> None:
    """A store that is down or missing fails the ingest now, naming its URL, not after the parse."""
    try:
        raw.check_reachable()
    except DataNotFoundError as error:
        folder = raw.url(layout.raw_day_folder(day))
        raise DataNotFoundError(f"no device logs for {day} under {folder} ({error})") from error
    try:
        lake.check_reachable()
    except DataNotFoundError as error:
        raise StorageError(
            f"the lake {lake.url()} does not exist: create its bucket or fix the lake URL"
        ) from error


def _new_report(
    day: date, raw: ObjectStore, lake: ObjectStore, files: list[RawFile], screened: ScreenedDay
) -> IngestReport:
    return IngestReport(
        date=day.isoformat(),
        raw_url=raw.url(layout.raw_day_folder(day)),
        partition_url=lake.url(layout.readings_partition(day)),
        files_seen=len(files),
        files_ingested=len(screened.accepted),
        files_quarantined=len(screened.rejected),
        sensors=len(screened.schema.sensors) if screened.schema else 0,
        file_reasons=dict(Counter(r.reason for r in screened.rejected)),
        file_variants=dict(
            sorted(Counter(v for log in screened.accepted for v in log.variants).items())
        ),
    )


def ingest_day(
    day: date,
    *,
    raw: ObjectStore,
    lake: ObjectStore,
    options: IngestOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Validate and write one day; the partition appears whole, replacing any earlier one."""
    options = options or IngestOptions()
    started = time.perf_counter()
    _check_reachable(day, raw, lake)
    with tempfile.TemporaryDirectory(prefix="modelcycle-ingest-") as scratch_name:
        scratch = Path(scratch_name)
        files = _fetch_raw_files(raw, day, scratch)
        screened = screen_files(files, scratch / "plain")
        if screened.schema is None or not screened.accepted:
            raise DataNotFoundError(
                f"no readable device logs for {day} under {raw.url(layout.raw_day_folder(day))} "
                f"({len(files)} files, all quarantined)"
            )
        report = _new_report(day, raw, lake, files, screened)
        if on_progress and screened.rejected:
            on_progress(len(screened.rejected))
        ingester = _BatchIngester(screened.schema, day)
        try:
            _run_batches(ingester, screened.accepted, scratch, options, on_progress)
        except pl.exceptions.PolarsError as error:
            raise ModelcycleError(f"ingest of {day} failed while parsing: {error}") from error
        lines = balance_lines(day, screened.accepted, ingester.accounts())
        quarantined = restore_original_lines(ingester.quarantine, screened.accepted)
        report.lines_read = lines.lines
        report.header_lines = lines.header_lines
        report.blank_lines = lines.blank_lines
        report.rows_written = sum(ingester.written.values())
        report.rows_quarantined = len(quarantined)
        report.rows_read = report.rows_written + report.rows_quarantined
        report.devices = len(ingester.devices)
        report.row_reasons = dict(sorted(Counter(row.reason for row in quarantined).items()))
        report.seconds = round(time.perf_counter() - started, 3)
        _publish(lake, day, scratch, quarantined, screened.rejected, report)
    log.info(
        "ingested day",
        date=day.isoformat(),
        rows_written=report.rows_written,
        rows_quarantined=report.rows_quarantined,
        files_quarantined=report.files_quarantined,
        seconds=report.seconds,
    )
    return report


def _device_batches(files: list[ReadableLog], size: int) -> Iterator[list[ReadableLog]]:
    """Batches of about `size` files in device order; a device's files (.csv and .csv.gz)
    share a batch, so duplicates between them are found and the output stays sorted."""
    batch: list[ReadableLog] = []
    ordered = sorted(files, key=lambda f: f.name)
    for _, same_device in itertools.groupby(ordered, key=lambda f: f.device_id):
        group = list(same_device)
        if batch and len(batch) + len(group) > size:
            yield batch
            batch = []
        batch.extend(group)
    if batch:
        yield batch


def _run_batches(
    ingester: _BatchIngester,
    files: list[ReadableLog],
    scratch: Path,
    options: IngestOptions,
    on_progress: ProgressCallback | None,
) -> None:
    sensors = list(ingester.schema.sensors)
    path = scratch / "readings.parquet"
    try:
        # Byte-stream-split suits noisy floats: 4x faster to write than dictionaries, nearly as
        # small.
        with pq.ParquetWriter(
            path,
            ingester.schema.arrow_schema(),
            compression="zstd",
            use_dictionary=[DEVICE_COLUMN],
            column_encoding=dict.fromkeys(sensors, "BYTE_STREAM_SPLIT"),
        ) as parquet:
            writer = BackgroundWriter(parquet)
            try:
                batches = _device_batches(files, options.batch_files)
                for parsed in parsed_ahead(batches, ingester.schema):
                    ingester.run_batch(parsed, writer)
                    if on_progress:
                        on_progress(len(parsed.logs))
            finally:
                writer.close()
    except OSError as error:  # a full disk, a file size limit: nothing was published
        raise StorageError(
            f"ingest of {ingester.day} could not write its partition to {path}: {error}"
        ) from error


def read_ingest_report(lake: ObjectStore, day: date) -> IngestReport:
    """The report of the last successful ingest of a day."""
    key = layout.ingest_report(day)
    if not lake.exists(key):
        raise DataNotFoundError(f"day {day} has not been ingested into {lake.url()}")
    return IngestReport.from_json(lake.read_bytes(key).decode())
