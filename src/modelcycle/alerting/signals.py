"""What each rule type sees right now: a list of signals, one per thing that is wrong.

Rules only observe; `engine` turns signals into alert state and messages. A rule that cannot be
evaluated (the registry is down) raises, and its alerts keep their state rather than resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import polars as pl
from sqlalchemy import select

from modelcycle.alerting.config import (
    AccuracyRule,
    DeviceAnomalyRule,
    DriftRule,
    ModelStaleRule,
    RuleConfig,
    TrainingFailedRule,
    TrainingSlaRule,
)
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.monitoring.anomaly_runs import anomalous_runs
from modelcycle.registry.ages import ModelAge
from modelcycle.store import Store
from modelcycle.store.evaluations import daily_metric, latest_drift, window_average
from modelcycle.store.tables import ScoreRun, TrainingRun
from modelcycle.store.times import as_utc


@dataclass(frozen=True)
class Signal:
    """A condition that holds now; `key` deduplicates it across checks."""

    key: str
    rule: str
    kind: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    customer_id: str | None = None


@dataclass
class Facts:
    """Where rules look: the store, plus lazily fetched registry and lake facts."""

    store: Store
    now: datetime
    model_ages: Callable[[list[str]], dict[str, ModelAge]]
    device_scores: Callable[[str, date | None], tuple[date, pl.DataFrame] | None]
    customers: Callable[[], dict[str, str]]
    default_models: tuple[str, ...]
    anomaly_model: str
    scores_day: date | None = None


def model_stale(name: str, rule: ModelStaleRule, facts: Facts) -> list[Signal]:
    """The serving champion's training time is the age that matters: a fresh challenger that was
    never promoted does not make the model that answers any younger."""
    models = rule.models or list(facts.default_models)
    ages = facts.model_ages(models)
    signals = []
    for model in models:
        age = ages.get(model)
        if age is None or age.champion is None:
            what = "registered version" if age is None else "champion"
            summary = f"{model} has no {what}"
            details: dict[str, Any] = {"model": model}
        else:
            hours = age.champion_hours(facts.now) or 0.0
            if hours <= rule.max_age_hours:
                continue
            summary = (
                f"{model}: champion v{age.champion[0]} was trained {hours:.0f} h ago "
                f"(limit {rule.max_age_hours:g} h)"
            )
            details = {"model": model, "version": age.champion[0], "age_hours": round(hours, 2)}
            if age.newest is not None:
                newest_hours = age.newest_hours(facts.now) or 0.0
                summary += f"; newest v{age.newest[0]} {newest_hours:.1f} h ago"
                details |= {
                    "newest_version": age.newest[0],
                    "newest_age_hours": round(newest_hours, 2),
                }
        signals.append(
            Signal(f"model_stale:{model}", name, rule.type, rule.severity, summary, details)
        )
    return signals


def accuracy(name: str, rule: AccuracyRule, facts: Facts) -> list[Signal]:
    daily = daily_metric(facts.store, rule.model, metric=rule.metric, days=rule.window_days)
    value = window_average(daily, rule.window_days, use_metric=True)
    if value is None:
        return []
    crossed = value < rule.threshold if rule.direction == "below" else value > rule.threshold
    if not crossed:
        return []
    summary = (
        f"{rule.model}: {rule.window_days}-day {rule.metric} {value:.3f} is {rule.direction} "
        f"{rule.threshold:g}"
    )
    details = {
        "model": rule.model,
        "metric": rule.metric,
        "value": round(value, 4),
        "threshold": rule.threshold,
        "direction": rule.direction,
        "days": [d.day.isoformat() for d in daily],
        "versions": sorted({d.version for d in daily}),
    }
    key = f"accuracy:{name}:{rule.model}"
    return [Signal(key, name, rule.type, rule.severity, summary, details)]


def _latest_finished_training(facts: Facts) -> TrainingRun | None:
    """The newest training that has ended; both training rules judge this one."""
    with facts.store.session() as session:
        return session.scalars(
            select(TrainingRun)
            .where(TrainingRun.status != "running")
            .order_by(TrainingRun.started_at.desc())
        ).first()


def training_failed(name: str, rule: TrainingFailedRule, facts: Facts) -> list[Signal]:
    latest = _latest_finished_training(facts)
    if latest is None or latest.status != "failed":
        return []
    summary = f"training for {latest.day} failed: {latest.error or 'no reason recorded'}"
    details = {"day": latest.day.isoformat(), "run": latest.id, "error": latest.error}
    return [Signal("training_failed", name, rule.type, rule.severity, summary, details)]


def training_sla_missed(name: str, rule: TrainingSlaRule, facts: Facts) -> list[Signal]:
    """The latest training ran past its maximum run time, or none succeeded by today's deadline."""
    latest = _latest_finished_training(facts)
    if latest is not None and latest.status == "timed_out":
        summary = f"training for {latest.day} ran past its maximum run time: {latest.error}"
        details = {"day": latest.day.isoformat(), "run": latest.id, "error": latest.error}
        key = f"training_sla_missed:{latest.day}"
        return [Signal(key, name, rule.type, rule.severity, summary, details)]
    today = facts.now.astimezone(UTC).date()
    hour, minute = (int(p) for p in rule.deadline.split(":"))
    deadline = datetime.combine(today, time(hour, minute), tzinfo=UTC)
    if facts.now < deadline:
        return []
    start_of_day = datetime.combine(today, time(), tzinfo=UTC)
    with facts.store.session() as session:
        finished = session.scalars(
            select(TrainingRun.finished_at).where(
                TrainingRun.status == "succeeded", TrainingRun.finished_at.is_not(None)
            )
        ).all()
    if any(start_of_day <= as_utc(f) <= facts.now for f in finished if f is not None):
        return []  # on time, or late: a late success resolves the alert
    summary = f"no training succeeded on {today} by {rule.deadline} UTC"
    details = {"day": today.isoformat(), "deadline": deadline.isoformat()}
    return [
        Signal(f"training_sla_missed:{today}", name, rule.type, rule.severity, summary, details)
    ]


def drift(name: str, rule: DriftRule, facts: Facts) -> list[Signal]:
    signals = []
    for model in [rule.model] if rule.model else facts.default_models:
        summary_row = latest_drift(facts.store, model)
        if summary_row is None or summary_row.share_drifted <= rule.max_share:
            continue
        summary = (
            f"{model}: {summary_row.n_drifted}/{summary_row.n_features} features drifted on "
            f"{summary_row.day} (worst {summary_row.max_feature}, PSI {summary_row.max_value:.2f})"
        )
        details = {
            "model": model,
            "day": summary_row.day.isoformat(),
            "share_drifted": round(summary_row.share_drifted, 4),
            "max_feature": summary_row.max_feature,
        }
        signals.append(Signal(f"drift:{model}", name, rule.type, rule.severity, summary, details))
    return signals


def device_anomaly(name: str, rule: DeviceAnomalyRule, facts: Facts) -> list[Signal]:
    model = rule.model or facts.anomaly_model
    found = facts.device_scores(model, facts.scores_day)
    if found is None:
        return []
    day, scores = found
    runs = anomalous_runs(scores, rule.threshold, rule.consecutive)
    if runs.is_empty():
        return []
    customers = facts.customers()
    signals = []
    for row in runs.iter_rows(named=True):
        device = row[DEVICE_COLUMN]
        summary = (
            f"device {device}: {row['windows']} windows in a row above the anomaly threshold "
            f"on {day} (from {row['first']:%H:%M}, peak {row['peak']:.3f})"
        )
        details = {
            "device_id": device,
            "model": model,
            "day": day.isoformat(),
            "windows": row["windows"],
            "first_window": row["first"].isoformat(),
            "last_window": row["last"].isoformat(),
            "peak_score": round(float(row["peak"]), 4),
        }
        signals.append(
            Signal(
                f"device_anomaly:{device}",
                name,
                rule.type,
                rule.severity,
                summary,
                details,
                customer_id=customers.get(device),
            )
        )
    return signals


RULES: dict[str, Callable[[str, Any, Facts], list[Signal]]] = {
    "model_stale": model_stale,
    "accuracy": accuracy,
    "training_failed": training_failed,
    "training_sla_missed": training_sla_missed,
    "drift": drift,
    "device_anomaly": device_anomaly,
}


def signals_for(name: str, rule: RuleConfig, facts: Facts) -> list[Signal]:
    return RULES[rule.type](name, rule, facts)


def latest_scored_day(store: Store, model: str) -> date | None:
    with store.session() as session:
        return session.scalars(
            select(ScoreRun.day).where(ScoreRun.model == model).order_by(ScoreRun.day.desc())
        ).first()
