"""`modelcycle up` and `modelcycle backfill`: the local stack, and re-running days in Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelcycle.cli.context import settings_from, stderr, stdout
from modelcycle.cli.serve_access import check_open_stack, open_api_exposure
from modelcycle.errors import InvalidInputError
from modelcycle.lake import layout

if TYPE_CHECKING:
    from modelcycle.orchestration.stack import Stack


def up(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address every service listens on.")] = (
        "127.0.0.1"
    ),
    mlflow_port: Annotated[int, typer.Option("--mlflow-port", help="MLflow server port.")] = 5000,
    dagster_port: Annotated[int, typer.Option("--dagster-port", help="Dagster UI port.")] = 3000,
    api_port: Annotated[int, typer.Option("--api-port", help="Prediction API port.")] = 8000,
    allow_open: Annotated[
        bool,
        typer.Option(
            "--allow-open",
            help="Listen on a non-loopback --host although MLflow and the Dagster UI have no "
            "authentication (warned about).",
        ),
    ] = False,
) -> None:
    """Start the local stack: MLflow server, Dagster UI and daemon, the prediction API.

    Dagster's instance lives in MODELCYCLE_DAGSTER_HOME (default <home>/dagster: SQLite, or
    PostgreSQL with MODELCYCLE_DAGSTER_POSTGRES_URL). With the embedded MLflow store, an MLflow
    server is started on it and the others use it; with MODELCYCLE_TRACKING_URI set to a server,
    that server is used. Ctrl-C stops everything. On a non-loopback --host, only with
    --allow-open: nothing here asks who is calling.
    """
    from modelcycle.orchestration.stack import embedded_mlflow, local_stack

    settings = settings_from(ctx)
    check_open_stack(
        host,
        allow_open=allow_open,
        exposed=_exposed(
            host,
            settings.api_key_set,
            embedded_mlflow(settings),
            mlflow_port,
            dagster_port,
            api_port,
        ),
    )
    stack = local_stack(
        settings,
        host=host,
        mlflow_port=mlflow_port,
        dagster_port=dagster_port,
        api_port=api_port,
        allow_open=allow_open,
    )
    _run_stack(stack)


def _exposed(
    host: str,
    api_keys: frozenset[str],
    embedded_mlflow: bool,
    mlflow_port: int,
    dagster_port: int,
    api_port: int,
) -> list[str]:
    """What anybody who reaches `host` could use, for the warning of `--allow-open`."""
    exposed = []
    if embedded_mlflow:
        exposed.append(
            f"MLflow on {host}:{mlflow_port} has no authentication: anyone who can reach {host} "
            "can move `champion` and so what the API serves"
        )
    exposed.append(
        f"Dagster UI on {host}:{dagster_port} has no authentication: anyone who can reach {host} "
        "can launch runs"
    )
    if not api_keys:
        exposed.append(open_api_exposure(host, api_port))
    return exposed


def _run_stack(stack: Stack) -> None:
    from modelcycle.orchestration.stack import supervise

    def started() -> None:
        table = Table(title="modelcycle is up (Ctrl-C stops everything)")
        table.add_column("service")
        table.add_column("address")
        for service in stack.services:
            table.add_row(service.name, service.url or "(background)")
        table.add_row("logs", str(stack.log_dir))
        stdout.print(table)
        sys.stdout.flush()

    supervise(
        stack,
        starting=lambda service: stderr.status(f"starting {service.name}"),
        started=started,
        stopping=lambda: stderr.print("stopping"),
    )


def backfill(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (inclusive).")],
) -> None:
    """Launch the daily job for every day from --start to --end, as a Dagster backfill.

    The runs are queued in the Dagster instance (MODELCYCLE_DAGSTER_HOME); the daemon started by
    `modelcycle up` executes them, and the Dagster UI shows their progress.
    """
    from modelcycle.orchestration.instance import prepare_instance
    from modelcycle.orchestration.sensors import DAILY_JOB
    from modelcycle.orchestration.stack import StackError, tool

    settings = settings_from(ctx)
    first = layout.parse_day(start, option="--start")
    last = layout.parse_day(end, option="--end")
    if last < first:
        raise InvalidInputError(f"--end {last} is before --start {first}")
    if first < settings.orchestration_start:
        raise InvalidInputError(
            f"--start {first} is before the first partition {settings.orchestration_start} "
            "(MODELCYCLE_ORCHESTRATION_START)"
        )
    dagster_home, workspace = prepare_instance(settings)
    command = [
        tool("dagster"),
        "job",
        "backfill",
        "-w",
        str(workspace),
        "-j",
        DAILY_JOB,
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
        "--noprompt",
    ]
    result = subprocess.run(
        command,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"dagster refused the backfill: {reason}")
    days = (last - first).days + 1
    stdout.print(f"backfill of {days} day(s) {first} … {last} launched in {dagster_home}")
