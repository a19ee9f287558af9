"""Every prediction the API makes, written to the lake off the request path.

A request only appends to an in-memory queue; a writer thread drains it every few seconds into one
Parquet object per flush (`predictions/date=D/part-<time>-<id>.parquet`), so that online
predictions can be evaluated once their labels arrive. If the lake is unreachable the batch is
kept and retried, up to a bound, and the loss is logged rather than slowing requests.
"""

from __future__ import annotations

import io
import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from modelcycle.errors import StorageError
from modelcycle.storage import ObjectStore

log = structlog.get_logger(__name__)

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("predicted_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("device_id", pa.string()),
        pa.field("window_start", pa.timestamp("us")),
        pa.field("score", pa.float32(), nullable=False),
    ]
)
MAX_PENDING_ROWS = 1_000_000


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one request for one model."""

    predicted_at: datetime
    request_id: str | None
    model: str
    version: str
    scores: list[float]
    device_id: str | None = None
    windows: list[datetime] | None = None


def predictions_part(day: str, part_id: str) -> str:
    return f"predictions/date={day}/part-{part_id}.parquet"


def _to_table(batches: list[PredictionBatch]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in PREDICTION_SCHEMA.names}
    for batch in batches:
        n = len(batch.scores)
        columns["predicted_at"] += [batch.predicted_at] * n
        columns["request_id"] += [batch.request_id] * n
        columns["model"] += [batch.model] * n
        columns["version"] += [batch.version] * n
        columns["device_id"] += [batch.device_id] * n
        columns["window_start"] += list(batch.windows) if batch.windows else [None] * n
        columns["score"] += list(batch.scores)
    return pa.table(columns, schema=PREDICTION_SCHEMA)


class PredictionLog:
    """Queue in the request, Parquet in the lake from a writer thread."""

    def __init__(self, lake: ObjectStore | None, *, flush_seconds: float = 2.0):
        self.lake = lake
        self.flush_seconds = flush_seconds
        self._queue: queue.SimpleQueue[PredictionBatch] = queue.SimpleQueue()
        self._pending: list[PredictionBatch] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.rows_dropped = 0

    def record(self, batch: PredictionBatch) -> None:
        """Cheap enough for the request path: one queue append."""
        if self.lake is not None:
            self._queue.put(batch)

    def start(self) -> None:
        if self.lake is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush what is queued, then stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        while True:
            try:
                self._pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not self._pending or self.lake is None:
            return
        by_day: dict[str, list[PredictionBatch]] = {}
        for batch in self._pending:
            by_day.setdefault(batch.predicted_at.date().isoformat(), []).append(batch)
        kept: list[PredictionBatch] = []
        for day, batches in by_day.items():
            if not self._write(day, batches):
                kept += batches
        self._pending = self._bounded(kept)

    def _write(self, day: str, batches: list[PredictionBatch]) -> bool:
        assert self.lake is not None
        table = _to_table(batches)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        part_id = f"{datetime.now(UTC):%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        try:
            self.lake.write_bytes(predictions_part(day, part_id), buffer.getvalue())
        except StorageError as error:
            log.warning("prediction log write failed; will retry", error=str(error))
            return False
        self.rows_written += table.num_rows
        return True

    def _bounded(self, kept: list[PredictionBatch]) -> list[PredictionBatch]:
        rows = sum(len(batch.scores) for batch in kept)
        while kept and rows > MAX_PENDING_ROWS:
            dropped = kept.pop(0)
            rows -= len(dropped.scores)
            self.rows_dropped += len(dropped.scores)
            log.error(
                "prediction log dropped rows: the lake stays unreachable", rows=len(dropped.scores)
            )
        return kept
