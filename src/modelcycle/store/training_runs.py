"""Training runs as the store sees them, so that a failed or late training can raise an alert."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from sqlalchemy import select

from modelcycle.store.database import Store
from modelcycle.store.tables import TrainingRun


@contextmanager
def recorded_training(store: Store, day: date, *, trigger: str = "cli") -> Iterator[int]:
    """Record a training as running, then as succeeded or failed (with the reason's first line)."""
    with store.session() as session:
        run = TrainingRun(day=day, status="running", started_at=datetime.now(UTC), trigger=trigger)
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        yield run_id
    except BaseException as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        _finish(store, run_id, "failed", f"{type(error).__name__}: {reason}"[:2000])
        raise
    _finish(store, run_id, "succeeded", None)


def _finish(store: Store, run_id: int, status: str, error: str | None) -> None:
    with store.session() as session:
        run = session.get(TrainingRun, run_id)
        if run is not None:
            run.status = status
            run.finished_at = datetime.now(UTC)
            run.error = error


def record_failure(
    store: Store,
    day: date,
    reason: str,
    *,
    trigger: str,
    status: str = "failed",
) -> None:
    """A training that ended outside `recorded_training`: a run killed, timed out or stopped early.

    A killed run leaves its own row `running`; that row is finished with this outcome. Otherwise a
    row is added. `status` is `failed`, or `timed_out` for a run stopped at its maximum run time.
    """
    now = datetime.now(UTC)
    error = reason.splitlines()[0][:2000] if reason else "run failed"
    with store.session() as session:
        stuck = session.scalars(
            select(TrainingRun).where(
                TrainingRun.day == day,
                TrainingRun.status == "running",
                TrainingRun.trigger == trigger,
            )
        ).all()
        for run in stuck:
            run.status, run.finished_at, run.error = status, now, error
        if stuck:
            return
        session.add(
            TrainingRun(
                day=day,
                status=status,
                started_at=now,
                finished_at=now,
                error=error,
                trigger=trigger,
            )
        )
