"""The team overview: per model, accuracy per day with its 7-day average, version changes, the
champion and challenger with their metrics, the model's age, drift; then training runs and alerts.

The accuracy comes from the store's batch evaluations of the champion (store/evaluations.py), the
age from the registry (registry/ages.py, the one model age the stale alert uses too).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from modelcycle.errors import DataNotFoundError
from modelcycle.overview.registry_reads import RegistryReads
from modelcycle.registry.ages import STALE_AFTER_HOURS, ModelAge
from modelcycle.store import Store
from modelcycle.store.activity import drift_features, firing_alerts, recent_training_runs
from modelcycle.store.evaluations import DailyAccuracy, daily_metric, latest_drift, window_average

AVERAGE_DAYS = 7
CHART_DAYS = 90  # the chart's span; older days stay in the store and in `monitor report`
SHOWN_METRICS = ("accuracy", "f1", "pr_auc")


def rolling_average(daily: Sequence[DailyAccuracy], days: int = AVERAGE_DAYS) -> list[float]:
    """For each evaluated day, the mean accuracy of the `days` calendar days ending with it."""
    averages = []
    for i, row in enumerate(daily):
        since = row.day - timedelta(days=days)
        window = [d.accuracy for d in daily[: i + 1] if d.day > since]
        averages.append(sum(window) / len(window))
    return averages


def version_changes(daily: Sequence[DailyAccuracy]) -> list[dict[str, str]]:
    """The days the champion's version differs from the day before (the first day included)."""
    return [
        {"day": row.day.isoformat(), "version": row.version}
        for i, row in enumerate(daily)
        if i == 0 or daily[i - 1].version != row.version
    ]


def _version(registry: RegistryReads, model: str, version: str | None) -> dict[str, Any] | None:
    if version is None:
        return None
    found = registry.facts(model, version)
    return {
        "version": found.version,
        "run_id": found.run_id,
        "metrics": {name: found.metrics.get(name) for name in SHOWN_METRICS},
    }


def _age(age: ModelAge | None, now: datetime) -> dict[str, Any]:
    hours = age.champion_hours(now) if age is not None else None
    trained = age.champion[1].isoformat(timespec="seconds") if age and age.champion else None
    return {
        "hours": None if hours is None else round(hours, 1),
        "trained_at": trained,
        "stale": hours is not None and hours > STALE_AFTER_HOURS,
        "stale_after_hours": STALE_AFTER_HOURS,
    }


def _drift(store: Store, model: str) -> dict[str, Any] | None:
    summary = latest_drift(store, model)
    if summary is None:
        return None
    return {
        "day": summary.day.isoformat(),
        "method": summary.method,
        "threshold": summary.threshold,
        "n_features": summary.n_features,
        "n_drifted": summary.n_drifted,
        "features": [
            {"feature": f.feature, "value": round(f.value, 4), "drifted": f.drifted}
            for f in drift_features(store, model, summary.day)
        ],
    }


def model_overview(
    store: Store, registry: RegistryReads, model: str, age: ModelAge | None, now: datetime
) -> dict[str, Any]:
    """One model's block of the overview."""
    daily = daily_metric(store, model, days=CHART_DAYS)
    aliases = registry.aliases(model)
    return {
        "name": model,
        "accuracy": [
            {"day": d.day.isoformat(), "accuracy": d.accuracy, "version": d.version, "n": d.n}
            for d in daily
        ],
        "rolling_average": rolling_average(daily),
        "average_7d": window_average(daily, AVERAGE_DAYS),
        "version_changes": version_changes(daily),
        "champion": _version(registry, model, aliases.get("champion")),
        "challenger": _version(registry, model, aliases.get("challenger")),
        "age": _age(age, now),
        "drift": _drift(store, model),
    }


def team_overview(
    store: Store, registry: RegistryReads, names: Sequence[str], now: datetime
) -> dict[str, Any]:
    """Every registered model of `names` (one not registered yet is listed as such), the recent
    daily trainings and the firing alerts."""
    ages = registry.ages(names)
    models, missing = [], []
    for name in names:
        if name not in ages:
            missing.append(name)
            continue
        try:
            models.append(model_overview(store, registry, name, ages.get(name), now))
        except DataNotFoundError:
            missing.append(name)
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "models": models,
        "not_registered": missing,
        "runs": [run.to_dict() for run in recent_training_runs(store)],
        "alerts": [alert.to_dict() for alert in firing_alerts(store)],
    }
