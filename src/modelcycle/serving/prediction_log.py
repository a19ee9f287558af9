"""Every prediction the API makes, written to the lake off the request path.

A request only appends to an in-memory buffer; a writer thread drains it every few seconds into one
Parquet object per flush (`predictions/date=D/part-<time>-<id>.parquet`), so that online
predictions can be evaluated once their labels arrive. A write that fails, for any reason, keeps
its rows and is retried at the next flush. The buffer is bounded: past `max_buffered_rows` the
oldest rows are dropped (the newest are the ones monitoring still needs), counted and logged,
rather than slowing requests or growing without end.

The same writer keeps the shadow log (`shadow/date=D/...`, see serving/shadow.py): the
challenger's scores of the requests the champion answered, with the champion's scores beside them.
"""

from __future__ import annotations

import functools
import io
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import TYPE_CHECKING

import structlog

from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.lake import layout
from modelcycle.serving.background import TaskHealth
from modelcycle.serving.manager import describe_error
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

log = structlog.get_logger(__name__)


@functools.cache
def prediction_schema(shadow: bool = False) -> pa.Schema:
    """The log's columns; the shadow log adds the champion's version and scores for the same rows.
    Built on the writer's first flush (pyarrow is not imported while the API starts), then kept."""
    with FIRST_USE_IMPORTS:
        import pyarrow as pa

    fields = [
        pa.field("predicted_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("device_id", pa.string()),
        pa.field("window_start", pa.timestamp("us")),
        pa.field("score", pa.float32(), nullable=False),
    ]
    if shadow:
        fields += [
            pa.field("champion_version", pa.string(), nullable=False),
            pa.field("champion_score", pa.float32(), nullable=False),
        ]
    return pa.schema(fields)


MAX_BUFFERED_ROWS = 1_000_000
TASK_NAME = "prediction_log"


@dataclass(frozen=True)
class LogTable:
    """Which table of the lake a log writes: its schema and where each flush goes."""

    name: str
    shadow: bool  # the shadow log's columns (prediction_schema)
    part: Callable[[str, str], str]  # (day, part id) -> path in the lake


SERVED_TABLE = LogTable("prediction log", False, layout.predictions_part)
SHADOW_TABLE = LogTable("shadow log", True, layout.shadow_part)


@dataclass(slots=True)
class PredictionBatch:
    """The predictions of one request for one model (not frozen: built once per request, and a
    frozen dataclass's `__init__` costs several times more)."""

    predicted_at: datetime
    request_id: str | None
    model: str
    version: str
    scores: list[float]
    device_id: str | None = None
    windows: list[datetime] | None = None
    champion_version: str | None = None  # shadow rows only
    champion_scores: list[float] | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _to_table(batches: list[PredictionBatch], schema: pa.Schema) -> pa.Table:
    """Column by column: one comprehension per column over the batches, then each batch's
    values repeated for its rows by Arrow (`take`). The writer holds the GIL while it runs
    Python here, and every answer waits for it: a loop over batches appending to lists cost
    15 ms per 12,000 one-row requests (two seconds at c32), this 6.5 ms (docs/serving.md)."""
    import numpy as np
    import pyarrow as pa  # imported by prediction_schema, under the first-use lock

    counts = [len(batch.scores) for batch in batches]
    rows = sum(counts)
    # Which batch each row comes from; None when every batch is one row (a request of one row).
    take = None if rows == len(batches) else pa.array(np.repeat(np.arange(len(batches)), counts))

    def per_batch(name: str, values: list[object] | np.ndarray) -> pa.Array:
        array = pa.array(values, type=schema.field(name).type)
        return array if take is None else array.take(take)

    def per_row(name: str, values: Iterable[object]) -> pa.Array:
        return pa.array(list(values), type=schema.field(name).type)

    columns = {
        # Aware datetimes convert slowly (~0.5 µs each, 200 ms at the first call): as µs
        # since the epoch, from floats (exact to the µs once rounded), they take a copy.
        "predicted_at": per_batch(
            "predicted_at",
            np.rint(np.array([batch.predicted_at.timestamp() for batch in batches]) * 1e6).astype(
                np.int64
            ),
        ),
        "request_id": per_batch("request_id", [batch.request_id for batch in batches]),
        "model": per_batch("model", [batch.model for batch in batches]),
        "version": per_batch("version", [batch.version for batch in batches]),
        "device_id": per_batch("device_id", [batch.device_id for batch in batches]),
        "window_start": (
            per_row(
                "window_start",
                chain.from_iterable(
                    batch.windows or repeat(None, count)
                    for batch, count in zip(batches, counts, strict=True)
                ),
            )
            if any(batch.windows for batch in batches)
            else pa.nulls(rows, schema.field("window_start").type)
        ),
        "score": per_row("score", chain.from_iterable(batch.scores for batch in batches)),
    }
    if "champion_score" in schema.names:
        columns["champion_version"] = per_batch(
            "champion_version", [batch.champion_version for batch in batches]
        )
        columns["champion_score"] = per_row(
            "champion_score",
            chain.from_iterable(batch.champion_scores or () for batch in batches),
        )
    return pa.table(columns, schema=schema)


class PredictionLog:
    """A bounded buffer in the request, Parquet in the lake from a writer thread."""

    def __init__(
        self,
        lake: ObjectStore | None,
        *,
        flush_seconds: float = 2.0,
        max_buffered_rows: int = MAX_BUFFERED_ROWS,
        health: TaskHealth | None = None,
        clock: Callable[[], datetime] = _now,
        table: LogTable = SERVED_TABLE,
    ):
        self.lake = lake
        self.table = table
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self.health = health or TaskHealth(TASK_NAME)
        self.clock = clock
        self._buffer: deque[PredictionBatch] = deque()
        self._buffered_rows = 0
        self._lock = threading.Lock()  # guards the buffer, its row count and `rows_dropped`
        self._flushing = threading.Lock()  # one flush at a time: the writer, or stop()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.rows_dropped = 0
        self._dropped_reported = 0

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows

    def record(self, batch: PredictionBatch) -> None:
        """Cheap enough for the request path: one append under a lock, never a wait on the lake."""
        if self.lake is None:
            return
        with self._lock:
            self._buffer.append(batch)
            self._buffered_rows += len(batch.scores)
            self._drop_oldest()

    def record_many(self, batches: list[PredictionBatch]) -> None:
        """Several batches under one lock (the shadow worker's whole batch of requests)."""
        if self.lake is None or not batches:
            return
        with self._lock:
            self._buffer.extend(batches)
            self._buffered_rows += sum(len(batch.scores) for batch in batches)
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Keep at most `max_buffered_rows` (whole batches; the newest batch always stays)."""
        while self._buffered_rows > self.max_buffered_rows and len(self._buffer) > 1:
            rows = len(self._buffer.popleft().scores)
            self._buffered_rows -= rows
            self.rows_dropped += rows

    def start(self) -> None:
        if self.lake is None or self._thread is not None:
            return
        self._stop.clear()
        self.health.started()
        thread_name = self.table.name.replace(" ", "-")
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer, then flush what is buffered; rows it cannot write are reported lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        self.health.ended(None)
        if self._buffered_rows:
            log.error(
                f"{self.table.name} lost rows at shutdown: the lake did not take them",
                rows=self._buffered_rows,
                error=self.health.last_error,
            )

    def _run(self) -> None:
        reason: str | None = "the writer thread ended"
        try:
            while not self._stop.wait(self.flush_seconds):
                self.flush()
            reason = None
        finally:
            if reason is not None:  # only a BaseException gets here: flush() never raises
                self.health.ended(reason)
                log.critical(f"{self.table.name} writer stopped; restart the API")

    def flush(self) -> None:
        """Write what is buffered, one object per day; never raises (see `_write_day`)."""
        with self._flushing:
            with self._lock:
                batches = list(self._buffer)
                self._buffer.clear()
                self._buffered_rows = 0
            if self.lake is None or not batches:
                self._report_drops()
                return
            by_day: dict[str, list[PredictionBatch]] = {}
            for batch in batches:
                by_day.setdefault(batch.predicted_at.date().isoformat(), []).append(batch)
            kept: list[PredictionBatch] = []
            problems: list[str] = []
            for day, day_batches in by_day.items():
                problem = self._write_day(day, day_batches)
                if problem is not None:
                    kept += day_batches
                    problems.append(problem)
            if kept:
                with self._lock:
                    self._buffer.extendleft(reversed(kept))
                    self._buffered_rows += sum(len(batch.scores) for batch in kept)
                    self._drop_oldest()
                self.health.failed("; ".join(problems), self.clock())
            else:
                if self.health.consecutive_failures:
                    log.info(f"{self.table.name} writes work again", rows=self.rows_written)
                self.health.succeeded(self.clock())
            self._report_drops()

    def _write_day(self, day: str, batches: list[PredictionBatch]) -> str | None:
        """Write one day's batches; None, or why not (logged with its traceback)."""
        assert self.lake is not None
        try:
            table = _to_table(batches, prediction_schema(self.table.shadow))
            with FIRST_USE_IMPORTS:
                import pyarrow.parquet as pq

            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            part_id = f"{datetime.now(UTC):%H%M%S%f}-{uuid.uuid4().hex[:8]}"
            self.lake.write_bytes(self.table.part(day, part_id), buffer.getvalue())
        except Exception as error:  # noqa: BLE001 - logged (with its traceback once), counted
            # Broad on purpose: the writer must outlive any failure of the lake (a GCS 5xx surfaces
            # as gcsfs's own HttpError, a removed temp folder as an OSError). Logged with its
            # traceback, counted, shown in status; the rows wait for the next flush.
            problem = describe_error(error)
            # The traceback once per outage: a lake that stays down is retried every flush.
            trace = {} if self.health.consecutive_failures else {"exc_info": error}
            log.warning(
                f"{self.table.name} write failed; will retry",
                rows=sum(len(batch.scores) for batch in batches),
                error=problem,
                **trace,
            )
            return problem
        self.rows_written += table.num_rows
        return None

    def _report_drops(self) -> None:
        dropped = self.rows_dropped - self._dropped_reported
        if dropped:
            self._dropped_reported += dropped
            log.error(
                f"{self.table.name} dropped its oldest rows: the buffer is full",
                rows=dropped,
                max_buffered_rows=self.max_buffered_rows,
                error=self.health.last_error,
            )
