"""The ingest's stages overlapped, one batch apart: parse ahead, write behind, rows taken in runs.

polars' parse and pyarrow's Parquet encoding both release the GIL, so a day's batches are parsed
in one thread and written in another while the rules and the order run on the calling thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from modelcycle.lake.parse import ParsedBatch, parse_batch
from modelcycle.lake.schema import ReadingsSchema
from modelcycle.lake.screening import ReadableLog


class BackgroundWriter:
    """Writes each batch's table while the next batch is parsed, in order, one batch behind.

    Encoding and compressing a batch is a quarter of the ingest and releases the GIL; done in
    line, the parser's threads waited for it. One table in flight bounds memory to two batches,
    and a write that fails raises at the next batch or at the end, never unseen.
    """

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table) -> None:
        self.wait()
        self._pending = self._pool.submit(self._writer.write_table, table)

    def wait(self) -> None:
        """Until the table in flight is written; its error, if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def parsed_ahead(
    batches: Iterator[list[ReadableLog]], schema: ReadingsSchema
) -> Iterator[ParsedBatch]:
    """Each batch parsed while the one before it is judged, sorted and handed to the writer.

    Parsing is polars' work and releases the GIL; in line, the two cores idled while the rules
    and the order ran on one. One batch ahead: memory holds three batches at most (parsed,
    judged, being written).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parser") as pool:
        ahead: Future[ParsedBatch] | None = None
        for batch in batches:
            parsing = pool.submit(parse_batch, batch, schema)
            if ahead is not None:
                yield ahead.result()
            ahead = parsing
        if ahead is not None:
            yield ahead.result()


def take_rows(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """`frame`'s rows in the order of `rows`, copied run by run.

    Accepted rows are nearly all in file order: only repaired lines (appended by the parser)
    and refused ones break it. Runs of consecutive rows are sliced and joined, one sequential
    copy per column, 1.6x faster than gathering each row; a batch in disorder is gathered.
    """
    index = rows.to_numpy().astype(np.int64, copy=False)
    if not index.size:
        return frame.clear()
    starts = np.flatnonzero(np.diff(index, prepend=index[0] - 2) != 1)
    if starts.size > index.size // 16:
        return frame[rows]
    lengths = np.diff(starts, append=index.size)
    runs = [frame.slice(int(index[s]), int(n)) for s, n in zip(starts, lengths, strict=True)]
    return pl.concat(runs, rechunk=True)
