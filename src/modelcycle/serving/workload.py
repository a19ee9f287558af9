"""Bounding what one request can cost: a value budget checked on the raw bytes, and work slots.

A body within the byte limit can still hold millions of numbers, and parsing it would build
hundreds of MB of Python objects. `check_value_budget` counts the body's commas first (C speed,
no objects): a JSON text has at least one value more than it has commas outside strings, and the
strings these routes accept (feature and sensor names, ISO times) have none, so more commas than
the budget is more values than any valid request carries. Then 413, before anything is parsed.

Heavy work (parsing, validation, the feature SQL, ONNX Runtime) runs in worker threads so the
event loop keeps answering `/healthz` and small requests; `WorkSlots` caps how much runs at once.
A request waits up to MODELCYCLE_SERVING_BUSY_WAIT_SECONDS for a slot, then gets 503 with
`Retry-After`, so a burst is queued briefly and a flood is refused instead of piling up memory.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.concurrency import run_in_threadpool

from modelcycle.errors import ModelcycleError
from modelcycle.serving.inputs import RequestTooLargeError

# Bodies up to this size are worked on inline: at most a few thousand values, well under a
# millisecond, less than the hop to a thread and back would cost.
INLINE_BODY_BYTES = 32 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class ServerBusyError(ModelcycleError):
    """Every work slot stayed taken for the whole wait: try again shortly (503)."""

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def check_value_budget(raw: bytes, budget: int, limit: str) -> None:
    """413 when `raw` holds more than `budget` values, judged by its commas alone."""
    if raw.count(b",") >= budget:
        raise RequestTooLargeError(f"body: more than {budget} values; {limit}")


def is_small(content_length: str | None) -> bool:
    """A body known to be small enough to work on inline (chunked bodies count as large)."""
    return (
        content_length is not None
        and content_length.isdigit()
        and (int(content_length) <= INLINE_BODY_BYTES)
    )


class WorkSlots:
    """At most `limit` large requests worked on at once; the others wait, then get 503."""

    def __init__(self, limit: int, wait_seconds: float, registry: CollectorRegistry):
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.retry_after_seconds = max(1, math.ceil(wait_seconds))
        self._slots = asyncio.Semaphore(limit)
        self.working = Gauge(
            "modelcycle_api_work_in_progress",
            "Requests being parsed and scored in worker threads right now.",
            registry=registry,
        )
        self.refusals = Counter(
            "modelcycle_api_busy_refusals",
            "Requests answered 503 because every work slot stayed taken.",
            registry=registry,
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; 503 (ServerBusyError) if none frees up in time."""
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.wait_seconds)
            except TimeoutError:
                self.refusals.inc()
                raise ServerBusyError(
                    f"busy: {self.limit} large requests already being worked on "
                    f"(MODELCYCLE_SERVING_MAX_CONCURRENT); retry in {self.retry_after_seconds} s",
                    self.retry_after_seconds,
                ) from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work` in a worker thread, counted in `modelcycle_api_work_in_progress`."""

        def counted() -> T:
            with self.working.track_inprogress():
                return work(*args, **kwargs)

        return await run_in_threadpool(counted)
