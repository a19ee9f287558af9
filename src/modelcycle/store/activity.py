"""What the team overview reads from the store besides accuracy: the drifted features of a day,
the recent daily trainings, and the alerts that are firing. Plain records, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from modelcycle.store import Store
from modelcycle.store.tables import AlertState, DriftResult, TrainingRun
from modelcycle.store.times import as_utc


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    value: float
    drifted: bool


def drift_features(store: Store, model: str, day: date, *, limit: int = 10) -> list[FeatureDrift]:
    """The day's features by drift, most moved first."""
    with store.session() as session:
        rows = session.scalars(
            select(DriftResult)
            .where(DriftResult.model == model, DriftResult.day == day)
            .order_by(DriftResult.value.desc(), DriftResult.feature)
            .limit(limit)
        ).all()
        return [FeatureDrift(r.feature, float(r.value), bool(r.drifted)) for r in rows]


@dataclass(frozen=True)
class TrainingRunRecord:
    day: date
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        finished = as_utc(self.finished_at) if self.finished_at else None
        if finished is None:
            return None
        return (finished - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "status": self.status,
            "trigger": self.trigger,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": (
                self.finished_at.isoformat(timespec="seconds") if self.finished_at else None
            ),
            "seconds": self.seconds,
            "error": self.error,
        }


def recent_training_runs(store: Store, *, limit: int = 10) -> list[TrainingRunRecord]:
    with store.session() as session:
        rows = session.scalars(
            select(TrainingRun).order_by(TrainingRun.started_at.desc()).limit(limit)
        ).all()
        return [
            TrainingRunRecord(
                day=r.day,
                status=r.status,
                trigger=r.trigger,
                started_at=as_utc(r.started_at),
                finished_at=as_utc(r.finished_at) if r.finished_at else None,
                error=r.error,
            )
            for r in rows
        ]


@dataclass(frozen=True)
class FiringAlert:
    rule: str
    severity: str
    summary: str
    customer_id: str | None
    first_fired_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "summary": self.summary,
            "customer_id": self.customer_id,
            "first_fired_at": self.first_fired_at.isoformat(timespec="seconds"),
        }


def firing_alerts(store: Store, *, limit: int = 50) -> list[FiringAlert]:
    """Alerts firing now, newest first."""
    with store.session() as session:
        rows = session.scalars(
            select(AlertState)
            .where(AlertState.status == "firing")
            .order_by(AlertState.first_fired_at.desc())
            .limit(limit)
        ).all()
        return [
            FiringAlert(
                rule=r.rule,
                severity=r.severity,
                summary=r.summary,
                customer_id=r.customer_id,
                first_fired_at=as_utc(r.first_fired_at),
            )
            for r in rows
        ]
