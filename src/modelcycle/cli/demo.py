"""`modelcycle demo`: the whole lifecycle on embedded defaults, for a small fleet."""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from datetime import UTC, date, datetime, timedelta
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
from modelcycle.cli.train import _print_versions
from modelcycle.lake import layout
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:
    from modelcycle.registry.connection import Tracking
    from modelcycle.store import Store
    from modelcycle.training.runner import TrainedVersion


def demo(
    ctx: typer.Context,
    devices: Annotated[int, typer.Option("--devices", min=2, help="Fleet size.")] = 60,
    sensors: Annotated[int, typer.Option("--sensors", min=8, help="Sensors per device.")] = 40,
    days: Annotated[int, typer.Option("--days", min=2, help="Days to simulate.")] = 10,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2026-01-01",
    seed: Annotated[int, typer.Option("--seed", help="Seed of fleet and models.")] = 42,
) -> None:
    """Simulate a small fleet, ingest, train and register both models, then monitor them.

    Everything lands under the modelcycle home (MODELCYCLE_HOME, default ./.modelcycle): raw
    logs, the Parquet lake, MLflow's SQLite database and artifact folder, the monitoring store
    (modelcycle.db) and an accuracy chart (monitor.html). The last day is scored, every labelled
    day evaluated, and the alert rules checked. Running it again re-creates the same data and
    registers new model versions.
    """
    # Imported here: `modelcycle serve` must start without paying for MLflow and LightGBM.
    from modelcycle.registry.connection import connect_tracking
    from modelcycle.simulate import FleetSpec, simulate_fleet
    from modelcycle.store import open_store
    from modelcycle.store.training_runs import recorded_training

    settings = settings_from(ctx)
    first = layout.parse_day(start, option="--start")
    raw, lake = raw_store(settings), lake_store(settings)
    if not raw.is_local:
        stderr.print("the demo simulates into a local raw folder; unset MODELCYCLE_RAW_URL")
        raise typer.Exit(2)
    spec = FleetSpec(devices=devices, sensors=sensors, days=days, start=first, seed=seed)
    with progress_bar("simulate", total=devices * days) as progress:
        simulate_fleet(spec, Path(raw.root), on_progress=lambda n: advance(progress, n))
    _ingest_all(settings, raw, lake, [first + timedelta(days=i) for i in range(days)])
    tracking = connect_tracking(settings)
    last = first + timedelta(days=days - 1)
    store = open_store(settings)
    try:
        with recorded_training(store, last, trigger="demo"):
            trained = _train(settings, tracking, lake, raw, last, days, seed)
        _print_versions(trained, tracking.tracking_uri)
        _monitor(settings, store, lake, raw, [first + timedelta(days=i) for i in range(days)])
    finally:
        store.close()
    _print_next_steps(settings, raw, lake, tracking.tracking_uri)


def _train(
    settings: Settings,
    tracking: Tracking,
    lake: ObjectStore,
    raw: ObjectStore,
    last: date,
    days: int,
    seed: int,
) -> list[TrainedVersion]:
    from modelcycle.training.dataset import build_training_set
    from modelcycle.training.models import AnomalyDetector, FaultClassifier
    from modelcycle.training.runner import train_models

    with progress_bar("features", total=days) as progress:
        data = build_training_set(
            lake=lake, raw=raw, end=last, window_days=days, on_day=lambda _d: advance(progress)
        )
    # MLflow prints progress ("View run … at …") on stdout: keep stdout for our answer.
    with stderr.status("training and registering both models"), redirect_stdout(sys.stderr):
        trained = train_models(
            tracking=tracking,
            data=data,
            end=last,
            models=[
                (settings.classifier_model_name, FaultClassifier(seed=seed)),
                (settings.anomaly_model_name, AnomalyDetector(seed=seed)),
            ],
        )
    return trained


def _monitor(
    settings: Settings, store: Store, lake: ObjectStore, raw: ObjectStore, days: list[date]
) -> None:
    """Score the last day, evaluate every labelled day, report, and check the alert rules."""
    from modelcycle.alerting.facts import check_alerts
    from modelcycle.monitoring.daily import Monitoring, evaluate_day, score_day
    from modelcycle.monitoring.evaluation import LabelsNotReadyError
    from modelcycle.monitoring.report import build_report, write_chart
    from modelcycle.registry.catalog import newest_versions

    monitoring = Monitoring(settings=settings, lake=lake, raw=raw, store=store)
    with stderr.status("scoring the last day and measuring drift"):
        score_day(monitoring, days[-1])
    with progress_bar("evaluate", total=len(days)) as progress:
        for day in days:
            try:
                evaluate_day(monitoring, day)
            except LabelsNotReadyError as error:
                stderr.print(f"  {error}")
            advance(progress)
    names = list(settings.model_names)
    reports = build_report(
        store, names, days=len(days), newest_versions=newest_versions(monitoring.client, names)
    )
    chart = settings.home / "monitor.html"
    write_chart(reports, chart)
    for report in reports:
        average = report.accuracy_7d_avg
        stdout.print(
            f"{report.model}: 7-day accuracy "
            f"{'-' if average is None else f'{average:.3f}'} over {len(report.daily)} days"
        )
    result = check_alerts(settings, store, lake=lake, raw=raw, now=datetime.now(UTC))
    stdout.print(f"alerts firing: {', '.join(result.firing) or 'none'}  (chart: {chart})")


def _ingest_all(settings: Settings, raw: ObjectStore, lake: ObjectStore, days: list[date]) -> None:
    from modelcycle.lake.ingest import IngestOptions, ingest_day

    options = IngestOptions(
        memory_limit=settings.ingest_memory_limit, batch_files=settings.ingest_batch_files
    )
    with progress_bar("ingest", total=len(days)) as progress:
        for day in days:
            report = ingest_day(day, raw=raw, lake=lake, options=options)
            advance(progress)
            stderr.print(
                f"  {day}: {report.rows_written:,} rows written, "
                f"{report.rows_quarantined:,} quarantined, {report.files_quarantined} files"
            )


def _print_next_steps(settings: Settings, raw: ObjectStore, lake: ObjectStore, uri: str) -> None:
    home = settings.home.resolve()
    text = (
        f"raw logs      {raw.url()}\n"
        f"lake          {lake.url()}\n"
        f"MLflow        {uri}\n"
        f"artifacts     {settings.resolved_artifact_url}\n\n"
        f"monitoring    {settings.resolved_database_url}\n\n"
        "next:\n"
        "  uv run modelcycle models list\n"
        "  uv run modelcycle monitor report            # accuracy per day, drift, model age\n"
        "  uv run modelcycle alerts list               # what fired, and why\n"
        "  uv run modelcycle serve --port 8000          # then open http://127.0.0.1:8000/docs\n"
        f"  uv run modelcycle models show {settings.classifier_model_name}\n"
        f"  uv run mlflow ui --backend-store-uri {uri} --port 5000   # then open http://127.0.0.1:5000\n"
        f"  (state lives in {home}; delete it to start over)"
    )
    stdout.print(Panel(text, title="modelcycle demo: done"))
