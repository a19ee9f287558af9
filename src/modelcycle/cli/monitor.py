"""`modelcycle score`, `evaluate` and `monitor report`: how the champion does, day by day."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelcycle.cli.context import settings_from, stderr, stdout
from modelcycle.errors import InvalidInputError
from modelcycle.lake import layout

if TYPE_CHECKING:
    from modelcycle.monitoring.report import ModelReport

monitor_app = typer.Typer(help="Reports on the production models.", no_args_is_help=True)

DateOption = Annotated[str, typer.Option("--date", help="The day, YYYY-MM-DD.")]


def score(
    ctx: typer.Context,
    date: DateOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score every device-window of a day with each model's champion; measure feature drift.

    Scores go to the lake (scores/date=D/<model>.parquet) with the model version; the drift of
    each feature against the champion's training data (PSI) goes to the monitoring store.
    """
    from modelcycle.monitoring.daily import open_monitoring, score_day

    day = layout.parse_day(date)
    with open_monitoring(settings_from(ctx)) as monitoring, stderr.status(f"scoring {day}"):
        results = score_day(monitoring, day)
    rows = [
        {
            "model": r.model,
            "version": r.version,
            "windows": r.n_windows,
            "flagged": r.n_flagged,
            "scores": r.location,
            "drifted_features": None if r.drift is None else r.drift.n_drifted,
            "drift_share": None if r.drift is None else round(r.drift.share_drifted, 4),
        }
        for r in results
    ]
    if as_json:
        stdout.print_json(data=rows)
        return
    table = Table(title=f"scored {day}")
    for column in rows[0] if rows else ():
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row.values()))
    stdout.print(table)


def evaluate(
    ctx: typer.Context,
    date: DateOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record the champion's (and challenger's) metrics on a day whose labels have arrived.

    Labels come from the maintenance ledger; a day the ledger does not cover yet is refused and
    nothing is recorded. Re-running a day replaces its evaluation.
    """
    from modelcycle.monitoring.daily import evaluate_day, open_monitoring

    day = layout.parse_day(date)
    with open_monitoring(settings_from(ctx)) as monitoring, stderr.status(f"evaluating {day}"):
        results = evaluate_day(monitoring, day)
    if as_json:
        stdout.print_json(
            data=[
                {
                    "model": r.model,
                    "version": r.version,
                    "role": r.role,
                    "n": r.n_rows,
                    "positives": r.n_positive,
                    "metrics": {k: None if math.isnan(v) else v for k, v in r.metrics.items()},
                }
                for r in results
            ]
        )
        return
    table = Table(title=f"evaluated {day}")
    for column in ("model", "version", "role", "windows", "faulty", "accuracy", "f1", "roc_auc"):
        table.add_column(column)
    for r in results:
        m = r.metrics
        table.add_row(
            r.model,
            r.version,
            r.role,
            str(r.n_rows),
            str(r.n_positive),
            *(f"{m[k]:.3f}" for k in ("accuracy", "f1", "roc_auc")),
        )
    stdout.print(table)


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Only this model (repeatable).")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of history to show.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object by model.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also write a chart: FILE.png or FILE.html.")
    ] = None,
) -> None:
    """Accuracy per day, its 7-day average, the version behind each day, drift and model age."""
    from modelcycle.monitoring.report import build_report, write_chart
    from modelcycle.registry.catalog import model_ages
    from modelcycle.registry.connection import registry_client
    from modelcycle.store import open_store

    settings = settings_from(ctx)
    names = model or list(settings.model_names)
    unknown = [n for n in names if n not in settings.model_names]
    if unknown:
        raise InvalidInputError(
            f"--model {unknown[0]}: not a monitored model ({', '.join(settings.model_names)})"
        )
    client, _ = registry_client(settings)
    store = open_store(settings)
    try:
        reports = build_report(store, names, days=days, ages=model_ages(client, names))
    finally:
        store.close()
    now = datetime.now(UTC)
    if plot is not None:
        write_chart(reports, plot, now)
        stderr.print(f"chart written to {plot}")
    if as_json:
        stdout.print_json(data={r.model: r.to_json_dict(now) for r in reports})
        return
    for r in reports:
        _print_report(r, now)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_report(report: ModelReport, now: datetime) -> None:
    stdout.print(
        f"[bold]{report.model}[/bold]  7-day accuracy {_fmt(report.accuracy_7d_avg)}, "
        f"F1 {_fmt(report.average_of('f1'))}, PR-AUC {_fmt(report.average_of('pr_auc'))}"
    )
    stdout.print(f"  {report.age_line(now)}")
    if report.drift:
        drift = report.drift
        stdout.print(
            f"  drift on {drift['date']}: {drift['n_drifted']}/{drift['n_features']} features "
            f"(worst {drift['max_feature']}, PSI {drift['max_value']})"
        )
    if not report.daily:
        stdout.print("  no evaluations yet: run `modelcycle evaluate --date D`")
        return
    table = Table(caption="TP/FP/FN/TN: the confusion matrix at the version's threshold")
    for column in ("date", "accuracy", "F1", "PR-AUC", "TP/FP/FN/TN", "version", "windows"):
        table.add_column(column)
    for d in report.daily:
        counts = "-" if d.confusion is None else "/".join(str(n) for n in d.confusion.values())
        table.add_row(
            d.day.isoformat(),
            f"{d.accuracy:.3f}",
            _fmt(d.f1),
            _fmt(d.pr_auc),
            counts,
            d.version,
            str(d.n),
        )
    stdout.print(table)


@monitor_app.command("daily")
def daily(
    ctx: typer.Context,
    date: DateOption,
    evaluate_date: Annotated[
        str | None,
        typer.Option(
            "--evaluate-date", help="Day to evaluate (default: --date); skipped without labels."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The day's monitoring in one process: score --date, evaluate, then check the alert rules.

    What a scheduler runs each day: one start-up instead of three. A day whose labels have not
    arrived is reported and skipped, not failed. Exits 1 when a rule could not be evaluated or a
    channel failed, like `alerts check`.
    """
    from modelcycle.alerting.facts import check_monitored
    from modelcycle.alerting.rules_file import load_rules
    from modelcycle.monitoring.daily import evaluate_day, open_monitoring, score_day
    from modelcycle.monitoring.evaluation import LabelsNotReadyError

    settings = settings_from(ctx)
    day = layout.parse_day(date)
    judged_day = layout.parse_day(evaluate_date, option="--evaluate-date") if evaluate_date else day
    config = load_rules(settings.alert_rules)  # a bad rules file fails before any work
    with open_monitoring(settings) as monitoring:
        with stderr.status(f"scoring {day}"):
            scored = score_day(monitoring, day)
        skipped = None
        evaluated = []
        try:
            with stderr.status(f"evaluating {judged_day}"):
                evaluated = evaluate_day(monitoring, judged_day)
        except LabelsNotReadyError as error:
            skipped = str(error)
            stderr.print(f"[yellow]evaluation skipped:[/yellow] {error}")
        result = check_monitored(monitoring, scores_day=day, config=config)
    failed = [d for d in result.deliveries if not d.ok]
    summary = {
        "scored": [
            {"model": s.model, "version": s.version, "windows": s.n_windows} for s in scored
        ],
        "evaluated": [
            {
                "model": e.model,
                "version": e.version,
                "role": e.role,
                "accuracy": e.metrics["accuracy"],
            }
            for e in evaluated
        ],
        "evaluation_skipped": skipped,
        "firing": result.firing,
        "events": [{"event": e, "key": k} for e, k in result.events],
        "rule_errors": result.rule_errors,
        "failed_channels": [d.channel for d in failed],
    }
    if as_json:
        stdout.print_json(data=summary)
    else:
        for s in scored:
            stdout.print(f"scored    {s.model} v{s.version}: {s.n_windows} windows")
        for e in evaluated:
            stdout.print(
                f"evaluated {e.model} v{e.version} ({e.role}): accuracy {e.metrics['accuracy']:.3f}"
            )
        stdout.print(f"alerts    {len(result.firing)} firing, {len(result.events)} new events")
    if failed or result.rule_errors:
        raise typer.Exit(1)


@monitor_app.command("quality")
def quality(
    ctx: typer.Context,
    first: Annotated[str, typer.Option("--from", help="First scored day, YYYY-MM-DD.")],
    last: Annotated[str | None, typer.Option("--to", help="Last day (default: --from).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How right the anomaly alerts are: precision and recall per device-day against the
    simulator's injected anomalies and faults, for the detector's flags and the `device_anomaly`
    rule of the rules file. Measure days the detector was not trained on."""
    from modelcycle.alerting.config import DeviceAnomalyRule
    from modelcycle.alerting.rules_file import load_rules
    from modelcycle.monitoring.anomaly_quality import measure_anomaly_quality
    from modelcycle.storage.configured import lake_store, raw_store

    settings = settings_from(ctx)
    start = layout.parse_day(first, option="--from")
    end = layout.parse_day(last, option="--to") if last else start
    if end < start:
        raise InvalidInputError(f"--to {end} is before --from {start}")
    rules = [
        r for r in load_rules(settings.alert_rules).rules.values() if r.type == "device_anomaly"
    ]
    rule = rules[0] if rules else DeviceAnomalyRule(type="device_anomaly")
    assert isinstance(rule, DeviceAnomalyRule)
    model = rule.model or settings.anomaly_model_name
    result = measure_anomaly_quality(
        lake=lake_store(settings),
        raw=raw_store(settings),
        model=model,
        days=[start + timedelta(days=n) for n in range((end - start).days + 1)],
        threshold=rule.threshold,
        consecutive=rule.consecutive,
    )
    if as_json:
        stdout.print_json(data=result.as_dict())
        return
    stdout.print(
        f"[bold]{model}[/bold] on {len(result.days)} day(s), {result.device_days} device-days, "
        f"{result.truly_anomalous} with an injected anomaly or fault"
    )
    table = Table(caption="per device-day; TP/FP/FN/TN against the simulator's truth")
    for column in ("alerting", "precision", "recall", "TP/FP/FN/TN"):
        table.add_column(column)
    for label, counts in (
        ("detector (any window flagged)", result.detector),
        (f"rule (> {rule.threshold:g} for {rule.consecutive} h)", result.rule),
    ):
        table.add_row(
            label,
            f"{counts.precision:.3f}",
            f"{counts.recall:.3f}",
            f"{counts.true_positives}/{counts.false_positives}/"
            f"{counts.false_negatives}/{counts.true_negatives}",
        )
    stdout.print(table)
