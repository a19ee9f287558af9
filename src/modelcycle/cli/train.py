"""`modelcycle train`: both models on a window of days, registered in MLflow."""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

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
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from modelcycle.training.dataset import TrainingSet
    from modelcycle.training.runner import TrainedVersion


def train(
    ctx: typer.Context,
    date: Annotated[str, typer.Option("--date", help="Last day of the training window.")],
    window_days: Annotated[
        int | None,
        typer.Option(
            "--window-days",
            min=1,
            max=366,
            help="Days in the training window.",
            show_default="MODELCYCLE_TRAINING_WINDOW_DAYS, 7",
        ),
    ] = None,
    raw: Annotated[
        str | None,
        typer.Option(
            "--raw",
            help="Raw area with maintenance.csv, the labels (path, s3:// or gs://); as `ingest`.",
            show_default="MODELCYCLE_RAW_URL",
        ),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option(
            "--lake", help="Lake root the features come from.", show_default="MODELCYCLE_LAKE_URL"
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of both models.")] = 42,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the new versions as JSON.")
    ] = False,
) -> None:
    """Train the fault classifier and the anomaly detector and register a version of each.

    Features are hourly per-device windows from the lake; labels come from the maintenance ledger
    (raw area's maintenance.csv) as known at the end of --date; the last 20% of the window's hours
    are held out. Each model is an MLflow run (params, metrics, data hash, git sha, native and
    ONNX model); its ONNX export must reproduce the native scores before it is registered. A new
    version gets the alias `challenger`, and `champion` too when the model has none yet.
    """
    from modelcycle.store import open_store
    from modelcycle.store.training_runs import recorded_training

    settings = settings_from(ctx)
    if raw or lake:  # the stores and the training set read them from the settings
        settings = settings.model_copy(
            update={"raw_url": raw or settings.raw_url, "lake_url": lake or settings.lake_url}
        )
    end = layout.parse_day(date)
    # Every training is recorded (running, then succeeded or failed) for the training alerts.
    store = open_store(settings)
    try:
        with recorded_training(store, end):
            window = window_days or settings.training_window_days  # as the daily Dagster job
            trained, tracking_uri = _train(settings, end, window, seed)
    finally:
        store.close()
    if as_json:
        stdout.print_json(data=[_as_dict(t) for t in trained])
        return
    _print_versions(trained, tracking_uri)


def _train(
    settings: Settings, end: date, window_days: int, seed: int
) -> tuple[list[TrainedVersion], str]:
    # Imported here: `modelcycle serve` must start without paying for MLflow and LightGBM.
    from modelcycle.training.recipe import train_window

    with ExitStack() as features_bar:
        progress = features_bar.enter_context(progress_bar("features", total=window_days))

        def training(data: TrainingSet) -> AbstractContextManager[object]:
            features_bar.close()  # the features are built: their bar gives way to the spinner
            stderr.print(
                f"training on {len(data.y_train):,} windows ({int(data.y_train.sum()):,} faulty), "
                f"testing on {len(data.y_test):,} from {data.split_at:%Y-%m-%d %H:%M}"
            )
            return stderr.status("training and registering both models")

        trained = train_window(
            settings,
            lake=lake_store(settings),
            raw=raw_store(settings),
            end=end,
            window_days=window_days,
            seed=seed,
            on_day=lambda _day: advance(progress),
            while_training=training,
        )
    return trained.versions, trained.tracking.tracking_uri


def _as_dict(trained: TrainedVersion) -> dict[str, object]:
    return {
        "name": trained.model_name,
        "version": trained.version,
        "aliases": list(trained.aliases),
        "run_id": trained.run_id,
        "metrics": trained.metrics,
        "onnx_sha256": trained.onnx_sha256,
    }


def _print_versions(trained: list[TrainedVersion], tracking_uri: str) -> None:
    from modelcycle.registry.connection import mask_uri

    table = Table(title=f"registered in {mask_uri(tracking_uri)}")
    for column in ("model", "version", "aliases", "accuracy", "f1", "roc_auc", "pr_auc"):
        table.add_column(column)
    for item in trained:
        m = item.metrics
        table.add_row(
            item.model_name,
            item.version,
            ", ".join(item.aliases),
            *(f"{m[k]:.3f}" for k in ("accuracy", "f1", "roc_auc", "pr_auc")),
        )
    stdout.print(table)
