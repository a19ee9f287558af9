"""`modelcycle demo`: the whole lifecycle on embedded defaults, for a small fleet."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from modelcycle.cli.context import (
    advance,
    lake_store,
    progress_bar,
    raw_store,
    settings_from,
    stderr,
    stdout,
)
from modelcycle.lake import layout
from modelcycle.observability import log_file_path
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:
    from modelcycle.orchestration.local import DayOutcome

WARMUP_DAYS = 2  # only ingested: the first training has three days of data
MIN_DAYS = WARMUP_DAYS + 1


def demo(
    ctx: typer.Context,
    devices: Annotated[int, typer.Option("--devices", min=2, help="Fleet size.")] = 60,
    sensors: Annotated[int, typer.Option("--sensors", min=8, help="Sensors per device.")] = 40,
    days: Annotated[int, typer.Option("--days", min=MIN_DAYS, help="Days to simulate.")] = 10,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2026-01-01",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fleet.")] = 42,
) -> None:
    """Simulate a small fleet, then run the daily Dagster job for each day: several model
    versions in the registry and a history of monitoring.

    The first two days are only ingested (the first training needs a few days of data); every
    later day runs the whole daily job in this process: ingest with its data-quality check,
    features, training and registering both models on the window ending that day, the metric
    gate against the champion, scoring, evaluation once the day's labels are in, and the alert
    check. Everything lands under the modelcycle home (MODELCYCLE_HOME, default ./.modelcycle):
    raw logs, the Parquet lake, MLflow's database and artifacts, the monitoring store, an accuracy
    chart (monitor.html) and Dagster's instance, so `modelcycle up` shows the runs afterwards.
    Running it again re-creates the same data and registers new versions.
    """
    # Imported here: `modelcycle serve` must start without paying for MLflow, Dagster, LightGBM.
    from modelcycle.simulate import FleetSpec, simulate_fleet

    settings = settings_from(ctx)
    first = layout.parse_day(start, option="--start")
    raw, lake = raw_store(settings), lake_store(settings)
    if not raw.is_local:
        stderr.print("the demo simulates into a local raw folder; unset MODELCYCLE_RAW_URL")
        raise typer.Exit(2)
    spec = FleetSpec(devices=devices, sensors=sensors, days=days, start=first, seed=seed)
    with progress_bar("simulate", total=devices * days) as progress:
        simulate_fleet(spec, Path(raw.root), on_progress=lambda n: advance(progress, n))
    all_days = [first + timedelta(days=i) for i in range(days)]
    outcomes = _run_days(settings, all_days)
    _print_outcomes(outcomes)
    _print_serving(settings)
    _report(settings, days)
    _print_next_steps(settings, raw, lake, outcomes)


def _run_days(settings: Settings, days: list[date]) -> list[DayOutcome]:
    """Each day through the daily Dagster job, in this process, recorded in Dagster's instance."""
    from modelcycle.orchestration.demo_days import run_days

    with progress_bar("daily runs (Dagster)", total=len(days)) as progress:

        def show(outcome: DayOutcome, lake_only: bool) -> None:
            progress.console.print(_outcome_line(settings, outcome, lake_only=lake_only))
            advance(progress)

        return run_days(settings, days, warmup_days=WARMUP_DAYS, on_outcome=show)


def _outcome_line(settings: Settings, outcome: DayOutcome, *, lake_only: bool) -> str:
    if outcome.failed_checks and not outcome.failed_steps:
        why = "; ".join(outcome.failed_checks)
        return f"  {outcome.day}  [yellow]stopped by a check[/yellow]  {why}"
    if not outcome.succeeded:
        return f"  {outcome.day}  [red]failed[/red]  {outcome.problem or 'see the run in Dagster'}"
    if lake_only:
        return f"  {outcome.day}  ingested (training starts once there are {MIN_DAYS} days)"
    versions = ", ".join(f"{name} v{v}" for name, v in sorted(outcome.versions.items()))
    refused = "; ".join(f"{name} refused: {why}" for name, why in sorted(outcome.refused.items()))
    champions = outcome.champions
    moved = sorted(f"{n} v{v}" for n, v in outcome.versions.items() if champions.get(n) == v)
    released = f"champion now {', '.join(moved)}" if moved else "no champion moved"
    key = f"{settings.classifier_model_name} champion"
    accuracy = outcome.accuracy.get(key)
    evaluated = "labels not in yet" if accuracy is None else f"champion accuracy {accuracy:.3f}"
    gates = refused or "gates passed"
    return f"  {outcome.day}  [green]ok[/green]  {versions}; {gates}; {released}; {evaluated}"


def _print_outcomes(outcomes: list[DayOutcome]) -> None:
    stopped = [o for o in outcomes if o.failed_checks and not o.failed_steps]
    failed = [o for o in outcomes if not o.succeeded and o not in stopped]
    trained = sum(1 for o in outcomes if o.versions)
    stdout.print(
        f"{len(outcomes)} daily runs through Dagster: "
        f"{len(outcomes) - len(failed) - len(stopped)} succeeded, {len(stopped)} stopped by a "
        f"blocking check, {len(failed)} failed; {trained} trainings registered a version of "
        "each model"
    )
    if stopped:
        stdout.print(
            "  a day stopped by its data-quality check trains nothing; the rest of it waits for a"
            " re-run"
        )
    for outcome in failed:
        stdout.print(f"  {outcome.day} failed: {outcome.problem}")


def _print_serving(settings: Settings) -> None:
    """Which version serves each model now, and why (the release trail's own words)."""
    from modelcycle.release.service import open_releases
    from modelcycle.release.summary import serving_line

    with open_releases(settings) as releases:
        for model in settings.model_names:
            stdout.print(serving_line(releases, model), highlight=False)


def _report(settings: Settings, days: int) -> None:
    """Accuracy per model over the run, the chart, and what alerts are firing now."""
    from modelcycle.alerting.facts import check_monitored
    from modelcycle.monitoring.daily import open_monitoring
    from modelcycle.monitoring.report import build_report, write_chart
    from modelcycle.registry.catalog import model_ages

    names = list(settings.model_names)
    chart = settings.home / "monitor.html"
    with open_monitoring(settings) as monitoring:
        reports = build_report(
            monitoring.store,
            names,
            days=days,
            ages=model_ages(monitoring.client, names),
        )
        write_chart(reports, chart)
        for report in reports:
            average = report.accuracy_7d_avg
            stdout.print(
                f"{report.model}: 7-day accuracy "
                f"{'-' if average is None else f'{average:.3f}'} over {len(report.daily)} days"
            )
        result = check_monitored(monitoring)
    stdout.print(f"alerts firing: {', '.join(result.firing) or 'none'}  (chart: {chart})")


def _demo_sign_in(settings: Settings) -> str:
    """How to sign in to the dashboard: the demo admin with a fresh password, in local only."""
    from modelcycle.access.passwords import demo_sign_in
    from modelcycle.store import open_store

    if settings.environment != "local":
        return "              sign in as a user given a password with `users set-password`\n"

    store = open_store(settings)
    try:
        with store.session() as session:
            user, password = demo_sign_in(session=session, environment=settings.environment)
    finally:
        store.close()
    return f"              sign in as {user} with password {password} (local only; shown once)\n"


def _print_next_steps(
    settings: Settings, raw: ObjectStore, lake: ObjectStore, outcomes: list[DayOutcome]
) -> None:
    from modelcycle.registry.connection import mask_uri

    home = settings.home.resolve()
    sign_in = _demo_sign_in(settings)
    text = (
        f"raw logs      {raw.url()}\n"
        f"lake          {lake.url()}\n"
        f"MLflow        {mask_uri(settings.resolved_tracking_uri)}\n"
        f"artifacts     {settings.resolved_artifact_url}\n"
        f"monitoring    {mask_uri(settings.resolved_database_url)}\n"
        f"Dagster       {settings.resolved_dagster_home} ({len(outcomes)} runs)\n"
        f"log file      {log_file_path(settings).resolve()}\n"
        "dashboard     http://127.0.0.1:8000/dashboard (after `modelcycle up`)\n"
        f"{sign_in}\n"
        "next:\n"
        "  uv run modelcycle up                        # MLflow, Dagster UI (runs, checks), API\n"
        "  uv run modelcycle models list\n"
        "  uv run modelcycle monitor report            # accuracy per day, drift, model age\n"
        "  uv run modelcycle alerts list               # what fired, and why\n"
        "  uv run modelcycle release history           # who moved each champion, and why\n"
        "  uv run modelcycle serve --port 8000         # then open http://127.0.0.1:8000/docs\n"
        f"  (state lives in {home}; delete it to start over)"
    )
    if stdout.is_terminal:
        stdout.print(Panel(text, title="modelcycle demo: done"))
    else:  # a box cut at 80 columns would break its lines mid-phrase in a pipe or a file
        stdout.print(f"modelcycle demo: done\n{text}", highlight=False)
