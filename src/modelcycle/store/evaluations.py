"""Reading what monitoring recorded in the store: accuracy over time, 7-day averages, the latest
drift. The API's accuracy gauge reads these too, so they live with the store, not in
`monitoring`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from modelcycle.store import Store
from modelcycle.store.tables import DriftSummary, Evaluation

CONFUSION_COLUMNS = ("true_positives", "false_positives", "false_negatives", "true_negatives")
CHAMPION_BATCH = (Evaluation.role == "champion", Evaluation.source == "batch")


@dataclass(frozen=True)
class DailyAccuracy:
    day: date
    accuracy: float
    version: str
    n: int
    metric: float
    f1: float | None = None
    pr_auc: float | None = None
    confusion: dict[str, int] | None = None  # None for days evaluated before migration 0004


def confusion_of(row: Evaluation) -> dict[str, int] | None:
    """The day's confusion matrix at the version's threshold, by `CONFUSION_COLUMNS` name."""
    counts = [getattr(row, name) for name in CONFUSION_COLUMNS]
    if any(count is None for count in counts):
        return None
    return dict(zip(CONFUSION_COLUMNS, counts, strict=True))


@dataclass(frozen=True)
class VersionDay:
    """One version's batch evaluation of one day, whatever its role was then."""

    day: date
    version: str
    role: str
    n: int
    accuracy: float
    f1: float
    pr_auc: float | None
    confusion: dict[str, int] | None


def version_history(
    store: Store, model: str, versions: Sequence[str], *, days: int | None = None
) -> list[VersionDay]:
    """Batch evaluations of the given versions, oldest day first (the champion's on a day where
    both it and the challenger were evaluated, and the challenger's), over the model's last `days`
    evaluated days."""
    with store.session() as session:
        query = select(Evaluation).where(
            Evaluation.model == model,
            Evaluation.version.in_(list(versions)),
            Evaluation.source == "batch",
        )
        if days is not None:
            latest = session.scalar(
                select(func.max(Evaluation.day)).where(Evaluation.model == model)
            )
            if latest is None:
                return []
            query = query.where(Evaluation.day > latest - timedelta(days=days))
        rows = session.scalars(query.order_by(Evaluation.day, Evaluation.version)).all()
        return [
            VersionDay(
                day=row.day,
                version=row.version,
                role=row.role,
                n=row.n_rows,
                accuracy=row.accuracy,
                f1=row.f1,
                pr_auc=row.pr_auc,
                confusion=confusion_of(row),
            )
            for row in rows
        ]


def daily_metric(
    store: Store, model: str, *, metric: str = "accuracy", days: int | None = None
) -> list[DailyAccuracy]:
    """The champion's metric per evaluated day, oldest first, over the last `days` days."""
    with store.session() as session:
        query = select(Evaluation).where(Evaluation.model == model, *CHAMPION_BATCH)
        if days is not None:
            latest = session.scalar(
                select(func.max(Evaluation.day)).where(Evaluation.model == model, *CHAMPION_BATCH)
            )
            if latest is None:
                return []
            query = query.where(Evaluation.day > latest - timedelta(days=days))
        rows = session.scalars(query.order_by(Evaluation.day)).all()
        return [
            DailyAccuracy(
                day=row.day,
                accuracy=row.accuracy,
                version=row.version,
                n=row.n_rows,
                metric=_as_float(getattr(row, metric)),
                f1=row.f1,
                pr_auc=row.pr_auc,
                confusion=confusion_of(row),
            )
            for row in rows
        ]


def _as_float(value: float | None) -> float:
    """NaN for a metric the day could not have (ROC-AUC with one class)."""
    return float("nan") if value is None else float(value)


def window_average(
    daily: Sequence[DailyAccuracy], window_days: int = 7, *, use_metric: bool = False
) -> float | None:
    """Mean over the `window_days` calendar days that end with the newest evaluated day."""
    if not daily:
        return None
    newest = daily[-1].day
    values = [
        (d.metric if use_metric else d.accuracy)
        for d in daily
        if d.day > newest - timedelta(days=window_days)
    ]
    values = [v for v in values if v == v]  # NaN when the metric needs both classes
    return sum(values) / len(values) if values else None


def accuracy_averages(
    store: Store, models: Sequence[str], *, window_days: int = 7
) -> dict[str, float]:
    """Each model's average accuracy over its last `window_days` days (absent: no evaluations)."""
    averages = {}
    for model in models:
        value = window_average(daily_metric(store, model, days=window_days), window_days)
        if value is not None:
            averages[model] = value
    return averages


def latest_drift(store: Store, model: str) -> DriftSummary | None:
    with store.session() as session:
        return session.scalars(
            select(DriftSummary)
            .where(DriftSummary.model == model)
            .order_by(DriftSummary.day.desc())
            .limit(1)
        ).first()
