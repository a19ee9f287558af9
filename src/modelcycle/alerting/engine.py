"""Alert lifecycle: signals become firing alerts, reminders and resolutions, sent exactly once.

State is in the store. A check decides, in one transaction, which events happen and which
channel must carry each (an outbox of pending deliveries); only then does it send. A crash
after deciding leaves the deliveries pending for the next check: nothing is lost, and nothing
already sent is sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelcycle.alerting.channels import Channel, DeliveryOutcome, build_channel, deliver_all
from modelcycle.alerting.config import AlertingConfig, RuleConfig
from modelcycle.alerting.messages import AlertMessage, EventKind
from modelcycle.alerting.signals import Facts, Signal, signals_for
from modelcycle.errors import ModelcycleError
from modelcycle.store import Store
from modelcycle.store.tables import AlertEvent, AlertState, Delivery
from modelcycle.store.times import as_utc

log = structlog.get_logger(__name__)

CUSTOMER_KINDS = frozenset({"device_anomaly"})


@dataclass
class CheckResult:
    """What one check did: rules that could not be evaluated, events, and delivery outcomes."""

    firing: list[str] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (event, key)
    rule_errors: dict[str, str] = field(default_factory=dict)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)


def routed_channels(
    config: AlertingConfig, rule: RuleConfig, kind: str, customer_id: str | None
) -> list[str]:
    """A rule's channels (all when it lists none); customer channels get only their devices."""
    names = rule.channels or list(config.channels)
    routed = []
    for name in names:
        owner = config.channels[name].customer
        if owner is None or (kind in CUSTOMER_KINDS and owner == customer_id):
            routed.append(name)
    return routed


def _message(event: AlertEvent) -> AlertMessage:
    kind: EventKind = event.event  # type: ignore[assignment]
    return AlertMessage(
        event=kind,
        key=event.key,
        rule=event.rule,
        kind=event.kind,
        severity=event.severity,
        summary=event.summary,
        at=as_utc(event.at),
        customer_id=event.customer_id,
        details=dict(event.details),
    )


def _record_event(
    session: Session,
    config: AlertingConfig,
    state: AlertState,
    event: str,
    now: datetime,
) -> AlertEvent:
    row = AlertEvent(
        key=state.key,
        rule=state.rule,
        kind=state.kind,
        event=event,
        severity=state.severity,
        summary=state.summary,
        details=state.details,
        customer_id=state.customer_id,
        at=now,
    )
    session.add(row)
    session.flush()
    rule = config.rules.get(state.rule)
    channels = routed_channels(config, rule, state.kind, state.customer_id) if rule else []
    for channel in channels:
        session.add(Delivery(event_id=row.id, channel=channel, status="pending", updated_at=now))
    return row


def _apply_signal(
    session: Session,
    config: AlertingConfig,
    states: dict[str, AlertState],
    signal: Signal,
    now: datetime,
) -> str | None:
    state = states.get(signal.key)
    if state is None:
        state = AlertState(key=signal.key, first_fired_at=now, status="resolved")
        session.add(state)
        states[signal.key] = state
    was_firing = state.status == "firing"
    state.rule, state.kind, state.severity = signal.rule, signal.kind, signal.severity
    state.summary, state.details, state.customer_id = (
        signal.summary,
        signal.details,
        signal.customer_id,
    )
    state.last_seen_at = now
    if not was_firing:
        state.status, state.first_fired_at, state.resolved_at = "firing", now, None
        state.last_notified_at = now
        _record_event(session, config, state, "firing", now)
        return "firing"
    last = as_utc(state.last_notified_at) if state.last_notified_at else None
    if last is None or now - last >= timedelta(minutes=config.renotify_minutes):
        state.last_notified_at = now
        _record_event(session, config, state, "reminder", now)
        return "reminder"
    return None


def decide(store: Store, config: AlertingConfig, facts: Facts, result: CheckResult) -> None:
    """Evaluate every rule and record the resulting events and pending deliveries."""
    now = facts.now
    signals: list[Signal] = []
    evaluated: set[str] = set()
    for name, rule in config.rules.items():
        try:
            signals += signals_for(name, rule, facts)
            evaluated.add(name)
        except ModelcycleError as error:
            result.rule_errors[name] = str(error)
            log.warning("alert rule not evaluated", rule=name, error=str(error))
    seen = {s.key for s in signals}
    with store.session() as session:
        states = {s.key: s for s in session.scalars(select(AlertState))}
        for signal in signals:
            event = _apply_signal(session, config, states, signal, now)
            if event:
                result.events.append((event, signal.key))
        for state in states.values():
            if (
                state.status == "firing"
                and state.key not in seen
                and (state.rule in evaluated or state.rule not in config.rules)
            ):
                state.status, state.resolved_at = "resolved", now
                _record_event(session, config, state, "resolved", now)
                result.events.append(("resolved", state.key))
        result.firing = sorted(k for k, s in states.items() if s.status == "firing")


def deliver_pending(
    store: Store,
    config: AlertingConfig,
    *,
    channel_factory: Callable[[str], Channel] | None = None,
) -> list[DeliveryOutcome]:
    """Send every pending delivery (this check's and any a crash left behind), then record."""
    build = channel_factory or (lambda name: build_channel(name, config.channels[name]))
    with store.session() as session:
        pending = session.execute(
            select(Delivery, AlertEvent)
            .join(AlertEvent, Delivery.event_id == AlertEvent.id)
            .where(Delivery.status == "pending")
            .order_by(Delivery.id)
        ).all()
        jobs = [(d.id, d.channel, _message(e)) for d, e in pending]
    pairs, ids, outcomes_by_id = [], [], {}
    for delivery_id, channel, message in jobs:
        if channel not in config.channels:
            outcomes_by_id[delivery_id] = DeliveryOutcome(
                channel, ok=False, attempts=0, error="channel no longer configured"
            )
            continue
        pairs.append((build(channel), message))
        ids.append(delivery_id)
    sent = deliver_all(
        pairs, attempts=config.retry_attempts, backoff_seconds=config.retry_backoff_seconds
    )
    outcomes_by_id.update(zip(ids, sent, strict=True))
    now = datetime.now(UTC)
    with store.session() as session:
        for delivery_id, outcome in outcomes_by_id.items():
            row = session.get(Delivery, delivery_id)
            if row is None:
                continue
            row.status = "sent" if outcome.ok else "failed"
            row.attempts += outcome.attempts
            row.last_error = outcome.error
            row.updated_at = now
    return list(outcomes_by_id.values())


def check(
    store: Store,
    config: AlertingConfig,
    facts: Facts,
    *,
    channel_factory: Callable[[str], Channel] | None = None,
) -> CheckResult:
    """One alert check: decide, then deliver."""
    result = CheckResult()
    decide(store, config, facts, result)
    result.deliveries = deliver_pending(store, config, channel_factory=channel_factory)
    for event, key in result.events:
        log.info("alert", alert_event=event, key=key)
    return result
