"""Facts for the rules, from the real sources: MLflow's registry, the lake and the fleet file."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING

import polars as pl

from modelcycle.alerting.config import AlertingConfig
from modelcycle.alerting.engine import CheckResult, check
from modelcycle.alerting.rules_file import load_rules
from modelcycle.alerting.signals import Facts, latest_scored_day
from modelcycle.lake.fleet import read_fleet
from modelcycle.monitoring.scoring import read_scores
from modelcycle.registry.ages import ModelAge
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore
from modelcycle.store import Store

if TYPE_CHECKING:
    from modelcycle.monitoring.daily import Monitoring


def build_facts(
    settings: Settings,
    store: Store,
    *,
    lake: ObjectStore,
    raw: ObjectStore,
    now: datetime,
    scores_day: date | None = None,
) -> Facts:
    """Registry and lake are only asked when a rule needs them, and at most once per check."""

    def model_ages(models: list[str]) -> dict[str, ModelAge]:
        from modelcycle.registry.catalog import model_ages as from_registry
        from modelcycle.registry.connection import check_server, registry_client
        from modelcycle.registry.uris import is_tracking_server

        uri = settings.resolved_tracking_uri
        if is_tracking_server(uri):
            check_server(uri)
        client, _ = registry_client(settings)
        return from_registry(client, models)

    def device_scores(model: str, day: date | None) -> tuple[date, pl.DataFrame] | None:
        wanted = day or latest_scored_day(store, model)
        if wanted is None:
            return None
        table = read_scores(lake, wanted, model)
        if table is None:
            return None
        return wanted, pl.from_arrow(table)  # type: ignore[return-value]

    @cache
    def customers() -> dict[str, str]:
        fleet = read_fleet(raw)
        return dict(
            zip(
                fleet.column("device_id").to_pylist(),
                fleet.column("customer_id").to_pylist(),
                strict=True,
            )
        )

    return Facts(
        store=store,
        now=now,
        model_ages=model_ages,
        device_scores=device_scores,
        customers=customers,
        default_models=settings.model_names,
        anomaly_model=settings.anomaly_model_name,
        scores_day=scores_day,
    )


def check_alerts(
    settings: Settings,
    store: Store,
    *,
    lake: ObjectStore,
    raw: ObjectStore,
    now: datetime,
    scores_day: date | None = None,
    config: AlertingConfig | None = None,
) -> CheckResult:
    """One alert check as configured: the rules file (unless already loaded), facts, check."""
    rules = config or load_rules(settings.alert_rules)
    facts = build_facts(settings, store, lake=lake, raw=raw, now=now, scores_day=scores_day)
    return check(store, rules, facts)


def check_monitored(
    monitoring: Monitoring,
    *,
    now: datetime | None = None,
    scores_day: date | None = None,
    config: AlertingConfig | None = None,
) -> CheckResult:
    """`check_alerts` over the settings and stores an open `Monitoring` already holds."""
    return check_alerts(
        monitoring.settings,
        monitoring.store,
        lake=monitoring.lake,
        raw=monitoring.raw,
        now=now or datetime.now(UTC),
        scores_day=scores_day,
        config=config,
    )
