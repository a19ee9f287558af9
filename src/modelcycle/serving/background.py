"""The API's background work (registry poll, accuracy poll, prediction-log writer) and its health.

Each task survives any error in a round: the error is logged with its traceback, counted and kept
in a `TaskHealth` that `/v1/models`, `/readyz` and `/metrics` read. A task that ends anyway while
the API runs is recorded as stopped, which makes the API not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from modelcycle.errors import ModelcycleError
from modelcycle.serving.manager import describe_error

log = structlog.get_logger(__name__)

# Rounds in a row that must fail before a task counts as failing in `/readyz` (one failed round is
# a hiccup; three, at the default 30 s poll, is a minute and a half without the registry).
FAILING_AFTER_ROUNDS = 3

# What one round returns: None when it did its job, else why not (already logged by the round).
Round = Callable[[], str | None]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskHealth:
    """What one background task last did; written by the task, read by status and metrics."""

    name: str
    running: bool = False
    stopped: str | None = None  # why the task ended while the API was running
    errors: int = 0
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def started(self) -> None:
        self.running, self.stopped = True, None

    def succeeded(self, now: datetime) -> None:
        self.consecutive_failures = 0
        self.last_success = now

    def failed(self, error: str, now: datetime) -> None:
        self.errors += 1
        self.consecutive_failures += 1
        self.last_error, self.last_error_at = error, now

    def ended(self, reason: str | None) -> None:
        """The task is over: `reason` when it died, None for an orderly stop."""
        self.running, self.stopped = False, reason

    @property
    def failing(self) -> bool:
        return self.consecutive_failures >= FAILING_AFTER_ROUNDS


def run_round(health: TaskHealth, step: Round, *, now: Callable[[], datetime] = _now) -> None:
    """One round of `step`, recorded in `health`; never raises an `Exception`."""
    try:
        problem = step()
    except ModelcycleError as error:
        problem = str(error)
        log.warning("background task failed; trying again", task=health.name, error=problem)
    except Exception as error:
        # Broad on purpose: a background task must outlive any error (a bug, a library's own
        # exception type); it is logged with its traceback, counted and shown in status.
        problem = describe_error(error)
        log.error(
            "background task failed unexpectedly; trying again",
            task=health.name,
            error=problem,
            exc_info=error,
        )
    if problem is None:
        health.succeeded(now())
    else:
        health.failed(problem, now())


async def _every(health: TaskHealth, step: Round, interval: float, freeze_first: bool) -> None:
    """`step` now, then every `interval` seconds, until cancelled."""
    health.started()
    await asyncio.to_thread(run_round, health, step)
    if freeze_first:
        # The first poll imports MLflow (or SQLAlchemy): millions of long-lived objects that
        # every full garbage collection would walk again, a pause of ~100 ms in the middle of
        # requests. Freeze them.
        gc.freeze()
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(run_round, health, step)


class BackgroundTasks:
    """The asyncio tasks of one app, and the health of every background task (threads too)."""

    def __init__(self) -> None:
        self.health: dict[str, TaskHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def track(self, name: str) -> TaskHealth:
        """The health record of task `name`, created on first use (a thread reports into it)."""
        return self.health.setdefault(name, TaskHealth(name))

    def __iter__(self) -> Iterator[TaskHealth]:
        return iter(self.health.values())

    def start(self, name: str, step: Round, interval: float, *, freeze: bool = True) -> None:
        """Run `step` now and then every `interval` seconds, on the running event loop."""
        health = self.track(name)
        task = asyncio.create_task(_every(health, step, interval, freeze), name=name)
        task.add_done_callback(lambda done: self._ended(health, done))
        self._tasks[name] = task

    def _ended(self, health: TaskHealth, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            health.ended(None)
            return
        error = task.exception()
        reason = describe_error(error) if error is not None else "returned"
        health.ended(reason)
        log.critical(
            "background task stopped; restart the API",
            task=health.name,
            error=reason,
            exc_info=error,
        )

    async def stop(self) -> None:
        """Cancel every task and wait for it; never raises, so the rest of shutdown runs."""
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        for name, task in tasks.items():
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception as error:  # noqa: BLE001 - already logged by `_ended`; shutdown
                    # must go on to flush the prediction log.
                    log.warning("background task had failed", task=name, error=str(error))
