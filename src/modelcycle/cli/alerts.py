"""`modelcycle alerts`: check the rules now, list alerts, test a channel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from modelcycle.cli.context import lake_store, raw_store, settings_from, stderr, stdout
from modelcycle.errors import InvalidInputError
from modelcycle.lake import layout

alerts_app = typer.Typer(
    help="Alert rules (MODELCYCLE_ALERT_RULES): check them, list alerts, test channels.",
    no_args_is_help=True,
)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidInputError(f"--at {text!r}: not an ISO time like 2026-01-31T08:00") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@alerts_app.command("check")
def check(
    ctx: typer.Context,
    date: Annotated[
        str | None,
        typer.Option("--date", help="Day of scores for device alerts; the latest scored day."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate as of this UTC time (default now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Evaluate every rule now: new alerts fire, cleared ones resolve, channels are notified.

    Exits 1 when a rule could not be evaluated or a channel failed (after its retries), so a
    scheduler notices; the failure is recorded and the other channels still get their messages.
    """
    from modelcycle.alerting.facts import check_alerts
    from modelcycle.alerting.rules_file import load_rules
    from modelcycle.store import open_store

    settings = settings_from(ctx)
    config = load_rules(settings.alert_rules)
    scores_day = layout.parse_day(date) if date else None
    now = _parse_at(at)
    store = open_store(settings)
    try:
        result = check_alerts(
            settings,
            store,
            lake=lake_store(settings),
            raw=raw_store(settings),
            now=now,
            scores_day=scores_day,
            config=config,
        )
    finally:
        store.close()
    failed = [d for d in result.deliveries if not d.ok]
    if as_json:
        stdout.print_json(
            data={
                "firing": result.firing,
                "events": [{"event": e, "key": k} for e, k in result.events],
                "rule_errors": result.rule_errors,
                "deliveries": [
                    {"channel": d.channel, "ok": d.ok, "attempts": d.attempts, "error": d.error}
                    for d in result.deliveries
                ],
            }
        )
    else:
        for event, key in result.events:
            stdout.print(f"{event:9} {key}")
        for name, error in result.rule_errors.items():
            stderr.print(f"[yellow]rule {name} not evaluated:[/yellow] {error}")
        for outcome in failed:
            stderr.print(f"[red]channel {outcome.channel} failed:[/red] {outcome.error}")
        stdout.print(f"{len(result.firing)} firing, {len(result.events)} new events")
    if failed or result.rule_errors:
        raise typer.Exit(1)


DEFAULT_LIST_LIMIT = 20


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option("--state", help="firing or resolved (default: both).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many, newest first.")
    ] = DEFAULT_LIST_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Alerts by state, newest first: when each fired and resolved, and its summary.

    One alert is a line (status, severity, when it fired, its key) and, indented below, when it
    resolved and its summary; --json has every field, last notification included.
    """
    from sqlalchemy import func, select

    from modelcycle.store import open_store
    from modelcycle.store.tables import AlertState

    if state not in (None, "firing", "resolved"):
        raise InvalidInputError(f"--state {state!r}: give firing or resolved")
    store = open_store(settings_from(ctx))
    try:
        with store.session() as session:
            query = select(AlertState)
            if state:
                query = query.where(AlertState.status == state)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            newest = query.order_by(AlertState.first_fired_at.desc(), AlertState.key).limit(limit)
            rows = [_alert_dict(a) for a in session.scalars(newest)]
    finally:
        store.close()
    if as_json:
        stdout.print_json(data=rows)
        return
    if not rows:
        stdout.print(f"no {state or ''} alerts".replace("  ", " "))
        return
    for row in rows:
        stdout.print(
            f"{row['status']:<8} {row['severity']:<8} {_short_time(row['first_fired_at'])}  "
            f"{row['key']}",
            highlight=False,
            markup=False,
        )
        resolved = f"resolved {_short_time(row['resolved_at'])}: " if row["resolved_at"] else ""
        stdout.print(f"    {resolved}{row['summary']}", highlight=False, markup=False)
    if total > len(rows):
        stdout.print(f"{len(rows)} of {total} alerts shown, newest first; --limit N for more")


def _short_time(iso: str) -> str:
    """2026-01-31T08:00:00+00:00 → 2026-01-31 08:00Z: the minute is enough to read."""
    return iso[:16].replace("T", " ") + "Z"


def _alert_dict(alert: object) -> dict[str, Any]:
    from modelcycle.store.tables import AlertState
    from modelcycle.store.times import as_utc

    assert isinstance(alert, AlertState)

    def when(moment: datetime | None) -> str | None:
        return as_utc(moment).isoformat(timespec="seconds") if moment else None

    return {
        "key": alert.key,
        "rule": alert.rule,
        "kind": alert.kind,
        "status": alert.status,
        "severity": alert.severity,
        "summary": alert.summary,
        "customer_id": alert.customer_id,
        "details": alert.details,
        "first_fired_at": when(alert.first_fired_at),
        "last_notified_at": when(alert.last_notified_at),
        "resolved_at": when(alert.resolved_at),
    }


@alerts_app.command("test")
def test_channel(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="A channel name from the rules file.")],
) -> None:
    """Send a test message through one channel, to check its address and credentials."""
    from modelcycle.alerting.channels import build_channel, deliver
    from modelcycle.alerting.messages import AlertMessage
    from modelcycle.alerting.rules_file import load_rules

    settings = settings_from(ctx)
    config = load_rules(settings.alert_rules)
    if channel not in config.channels:
        known = ", ".join(sorted(config.channels)) or "none configured"
        raise InvalidInputError(f"no channel named {channel!r} (channels: {known})")
    message = AlertMessage(
        event="test",
        key="test",
        rule="test",
        kind="test",
        severity="info",
        summary=f"modelcycle test message for channel {channel}",
        at=datetime.now(UTC),
    )
    outcome = deliver(
        build_channel(channel, config.channels[channel]),
        message,
        attempts=1,
        backoff_seconds=0,
    )
    if not outcome.ok:
        stderr.print(f"[red]error:[/red] channel {channel}: {outcome.error}")
        raise typer.Exit(1)
    stdout.print(f"test message sent through {channel}")
