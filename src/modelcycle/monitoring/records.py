"""Writing monitoring results to the store: each (model, day) replaced whole, never duplicated."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from modelcycle.monitoring.drift import DriftReport
from modelcycle.monitoring.evaluation import DayMetrics
from modelcycle.store.tables import DriftResult, DriftSummary, Evaluation, ScoreRun
from modelcycle.training.metrics import CONFUSION


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def replace_evaluation(
    session: Session,
    *,
    model: str,
    version: str,
    role: str,
    source: str,
    day: date,
    result: DayMetrics,
    labels_known_at: datetime,
) -> None:
    session.execute(
        delete(Evaluation).where(
            Evaluation.model == model,
            Evaluation.day == day,
            Evaluation.role == role,
            Evaluation.source == source,
        )
    )
    metrics = result.metrics
    session.add(
        Evaluation(
            model=model,
            version=version,
            role=role,
            source=source,
            day=day,
            n_rows=result.n_rows,
            n_positive=result.n_positive,
            accuracy=metrics["accuracy"],
            precision=metrics["precision"],
            recall=metrics["recall"],
            f1=metrics["f1"],
            roc_auc=_finite(metrics["roc_auc"]),
            pr_auc=_finite(metrics["pr_auc"]),
            **{name: int(metrics[name]) for name in CONFUSION},
            labels_known_at=labels_known_at.replace(tzinfo=UTC),
            evaluated_at=datetime.now(UTC),
        )
    )


def replace_score_run(
    session: Session, *, model: str, version: str, day: date, n_windows: int, location: str
) -> None:
    session.execute(delete(ScoreRun).where(ScoreRun.model == model, ScoreRun.day == day))
    session.add(
        ScoreRun(
            model=model,
            version=version,
            day=day,
            n_windows=n_windows,
            location=location,
            scored_at=datetime.now(UTC),
        )
    )


def replace_drift(
    session: Session, *, model: str, version: str, day: date, report: DriftReport
) -> None:
    session.execute(delete(DriftResult).where(DriftResult.model == model, DriftResult.day == day))
    session.execute(
        delete(DriftSummary).where(DriftSummary.model == model, DriftSummary.day == day)
    )
    worst = report.worst
    session.add(
        DriftSummary(
            model=model,
            version=version,
            day=day,
            method=report.method,
            threshold=report.threshold,
            n_features=len(report.features),
            n_drifted=report.n_drifted,
            share_drifted=report.share_drifted,
            max_value=worst.value,
            max_feature=worst.feature,
            computed_at=datetime.now(UTC),
        )
    )
    session.add_all(
        DriftResult(model=model, day=day, feature=f.feature, value=f.value, drifted=f.drifted)
        for f in report.features
    )
