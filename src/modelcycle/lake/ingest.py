"""Ingest one day of raw device logs into a validated, typed, sorted Parquet partition.

Both stores are checked first, so an unreachable one fails in a second, not after the parse.
Files are screened (`lake.screening`): text variants DuckDB misreads get a plain copy. DuckDB then
parses the CSV with a fixed schema and keeps every line its parser refuses (`store_rejects`), so
a garbled or truncated line is quarantined with its text and line number instead of failing the
day. Accepted rows then pass the SQL rules of `lake.rules`. Files are taken in device order, a
batch at a time, which bounds memory and keeps the output sorted by (device_id, timestamp)
without a global sort. Before anything is published, every file's physical lines must add up to
what was written, quarantined or skipped (`lake.ledger`).
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

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from modelcycle.errors import DataNotFoundError, ModelcycleError, StorageError
from modelcycle.lake import layout
from modelcycle.lake.ledger import FileAccount, balance_lines
from modelcycle.lake.quarantine import (
    QUARANTINE_FILES_SCHEMA,
    QUARANTINE_ROWS_SCHEMA,
    restore_original_lines,
)
from modelcycle.lake.report import IngestReport
from modelcycle.lake.rules import (
    BLANK_LINE,
    REPEATED_HEADER,
    parser_reason_sql,
    raw_line_sql,
    row_checks_sql,
    skipped_line_sql,
)
from modelcycle.lake.schema import DEVICE_COLUMN, TIMESTAMP_COLUMN, ReadingsSchema
from modelcycle.lake.screening import (
    RawFile,
    ReadableLog,
    RejectedFile,
    ScreenedDay,
    screen_files,
)
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore, duck

log = structlog.get_logger(__name__)

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class IngestOptions:
    memory_limit: str | None = None
    batch_files: int = 100
    threads: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        """As configured (MODELCYCLE_INGEST_*): the CLI and the Dagster asset ingest alike."""
        return cls(
            memory_limit=settings.ingest_memory_limit, batch_files=settings.ingest_batch_files
        )


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


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
    """Runs the batches of one day on one DuckDB connection and collects the quarantine."""

    def __init__(self, schema: ReadingsSchema, day: date, scratch: Path, options: IngestOptions):
        self.schema = schema
        self.day = day
        self.con = duck.connect(options.threads)
        if options.memory_limit:
            # A tight limit makes DuckDB's CSV reader several times slower; batches bound memory.
            self.con.execute(f"SET memory_limit = '{options.memory_limit}'")
        self.con.execute(f"SET temp_directory = '{scratch / 'duckdb-spill'}'")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute(
            "CREATE TABLE quarantine (file VARCHAR, line BIGINT, reason VARCHAR, "
            "detail VARCHAR, raw_line VARCHAR)"
        )
        self.con.execute("CREATE TABLE skipped (file VARCHAR, line BIGINT, kind VARCHAR)")
        self.written: Counter[str] = Counter()
        self.devices: set[str] = set()

    def _read_csv_sql(self, files: list[ReadableLog], batch: int) -> str:
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in self.schema.duckdb_columns().items())
        paths = _sql_list([f.parse_path for f in files])
        # Plain copies keep a .gz name: what DuckDB reads is never compressed.
        return (
            f"read_csv({paths}, header = true, columns = {columns}}}, compression = 'none', "
            "auto_detect = false, delim = ',', quote = '', escape = '', new_line = '\\n', "
            "timestampformat = '%Y-%m-%d %H:%M:%S', filename = true, store_rejects = true, "
            f"rejects_table = 'rejects_{batch}', rejects_scan = 'scans_{batch}')"
        )

    def run_batch(self, files: list[ReadableLog], batch: int, writer: pq.ParquetWriter) -> None:
        columns = ", ".join(f'"{c}"' for c in self.schema.columns)
        # A device id padded with spaces or tabs (`ts, device-0001, ...`) is still that device.
        parsed_columns = ", ".join(
            f'trim("{c}", \' \' || chr(9)) AS "{c}"' if c == DEVICE_COLUMN else f'"{c}"'
            for c in self.schema.columns
        )
        # rowid follows the files' line order (insertion order is preserved), so it identifies a
        # row and decides which of two duplicates is kept, at no cost.
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE parsed AS
            SELECT {parsed_columns},
                regexp_extract(filename, '(device-[0-9]{{4}})\\.csv(\\.gz)?$', 1) AS file_device,
                parse_filename(filename) AS file
            FROM {self._read_csv_sql(files, batch)}"""
        )
        checks = row_checks_sql(
            "(SELECT *, rowid AS line_order FROM parsed) AS rows", self.schema, self.day
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE bad AS SELECT line_order, reason, detail "
            f"FROM ({checks}) WHERE reason IS NOT NULL"
        )
        self.con.execute(
            f"""INSERT INTO quarantine
            SELECT p.file, NULL, b.reason, b.detail, {raw_line_sql(self.schema)}
            FROM parsed p JOIN bad b ON p.rowid = b.line_order"""
        )
        self._triage_parser_rejects(batch)
        good = "rowid NOT IN (SELECT line_order FROM bad)"
        accepted = self.con.sql(
            f"SELECT {columns} FROM parsed WHERE {good} "
            f'ORDER BY "{DEVICE_COLUMN}", "{TIMESTAMP_COLUMN}"'
        ).to_arrow_table()
        for name, count in self.con.execute(
            f"SELECT file, count(*) FROM parsed WHERE {good} GROUP BY file"
        ).fetchall():
            self.written[name] += int(count)
        if accepted.num_rows:
            writer.write_table(accepted.cast(self.schema.arrow_schema()))
        self.devices.update(accepted.column(DEVICE_COLUMN).unique().to_pylist())
        self.con.execute(f"DROP TABLE rejects_{batch}; DROP TABLE scans_{batch}")

    def _triage_parser_rejects(self, batch: int) -> None:
        """Each refused line once: a blank line or repeated header is skipped, the rest quarantined.

        A line can have several parser errors; the first column's decides its reason.
        """
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE refused AS
            SELECT parse_filename(s.file_path) AS file, e.line, e.csv_line, e.error_message,
                {parser_reason_sql()} AS reason, {skipped_line_sql(self.schema)} AS skip
            FROM rejects_{batch} e
            JOIN scans_{batch} s USING (scan_id, file_id)
            QUALIFY row_number() OVER (
                PARTITION BY e.scan_id, e.file_id, e.line ORDER BY e.column_idx
            ) = 1"""
        )
        self.con.execute(
            "INSERT INTO skipped SELECT file, line, skip FROM refused WHERE skip IS NOT NULL"
        )
        self.con.execute(
            "INSERT INTO quarantine SELECT file, line, reason, error_message, csv_line "
            "FROM refused WHERE skip IS NULL"
        )

    def accounts(self) -> dict[str, FileAccount]:
        """What became of each file's lines, for the ledger."""
        accounts = {name: FileAccount(written=count) for name, count in self.written.items()}
        for name, count in self.con.execute(
            "SELECT file, count(*) FROM quarantine GROUP BY file"
        ).fetchall():
            accounts.setdefault(name, FileAccount()).quarantined = int(count)
        for name, kind, count in self.con.execute(
            "SELECT file, kind, count(*) FROM skipped GROUP BY file, kind"
        ).fetchall():
            account = accounts.setdefault(name, FileAccount())
            if kind == REPEATED_HEADER:
                account.repeated_headers = int(count)
            elif kind == BLANK_LINE:
                account.blank = int(count)
        return accounts

    def quarantine_table(self) -> pa.Table:
        table = self.con.sql(
            "SELECT * FROM quarantine ORDER BY file, line NULLS LAST, reason"
        ).to_arrow_table()
        return table.cast(QUARANTINE_ROWS_SCHEMA)

    def close(self) -> None:
        self.con.close()


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _publish(
    lake: ObjectStore,
    day: date,
    scratch: Path,
    quarantine_rows: pa.Table,
    rejected: list[RejectedFile],
    report: IngestReport,
) -> None:
    """Quarantine first, then the partition, then the report: each one atomic."""
    rows_path = scratch / "quarantine-rows.parquet"
    files_path = scratch / "quarantine-files.parquet"
    _write_parquet(quarantine_rows, rows_path)
    _write_parquet(
        pa.Table.from_pylist(
            [{"file": r.name, "reason": r.reason} for r in rejected],
            schema=QUARANTINE_FILES_SCHEMA,
        ),
        files_path,
    )
    lake.put_file(rows_path, layout.quarantine_rows(day))
    lake.put_file(files_path, layout.quarantine_files(day))
    lake.put_file(scratch / "readings.parquet", layout.readings_partition(day))
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
        ingester = _BatchIngester(screened.schema, day, scratch, options)
        try:
            _run_batches(ingester, screened.accepted, scratch, options, on_progress)
            quarantine_rows = ingester.quarantine_table()
            accounts = ingester.accounts()
        except duckdb.Error as error:
            raise ModelcycleError(f"ingest of {day} failed in DuckDB: {error}") from error
        finally:
            ingester.close()
        lines = balance_lines(day, screened.accepted, accounts)
        quarantine_rows = restore_original_lines(quarantine_rows, screened.accepted)
        report.lines_read = lines.lines
        report.header_lines = lines.header_lines
        report.blank_lines = lines.blank_lines
        report.rows_written = sum(ingester.written.values())
        report.rows_quarantined = quarantine_rows.num_rows
        report.rows_read = report.rows_written + report.rows_quarantined
        report.devices = len(ingester.devices)
        report.row_reasons = dict(
            sorted(Counter(quarantine_rows.column("reason").to_pylist()).items())
        )
        report.seconds = round(time.perf_counter() - started, 3)
        _publish(lake, day, scratch, quarantine_rows, screened.rejected, report)
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
    # Byte-stream-split suits noisy floats: 4x faster to write than dictionaries, nearly as small.
    with pq.ParquetWriter(
        scratch / "readings.parquet",
        ingester.schema.arrow_schema(),
        compression="zstd",
        use_dictionary=[DEVICE_COLUMN],
        column_encoding=dict.fromkeys(sensors, "BYTE_STREAM_SPLIT"),
    ) as writer:
        for batch, chunk in enumerate(_device_batches(files, options.batch_files)):
            ingester.run_batch(chunk, batch, writer)
            if on_progress:
                on_progress(len(chunk))


def read_ingest_report(lake: ObjectStore, day: date) -> IngestReport:
    """The report of the last successful ingest of a day."""
    key = layout.ingest_report(day)
    if not lake.exists(key):
        raise DataNotFoundError(f"day {day} has not been ingested into {lake.url()}")
    return IngestReport.from_json(lake.read_bytes(key).decode())
