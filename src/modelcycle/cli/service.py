"""`modelcycle service`: each long-running process of a deployment, started from the one image.

The container image has a single entry point, `modelcycle`; compose and Kubernetes start the MLflow
server and the Dagster processes through these commands so that they run with the same locked
environment and the same `MODELCYCLE_*` settings as the API. Each command replaces itself with the
real server (exec), so the server is the container's main process and receives its signals.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelcycle.cli.context import settings_from

service_app = typer.Typer(
    help="Run one process of a deployment (compose, Kubernetes) in the foreground.",
    no_args_is_help=True,
)

DEFINITIONS_MODULE = "modelcycle.orchestration.definitions"

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
ExtraArguments = Annotated[
    list[str] | None,
    typer.Argument(
        help="The server's own options, after `--`: passed on unchanged.", show_default=False
    ),
]


def _exec(program: str, arguments: list[str]) -> None:
    """Become `program`: the server gets this process's id, environment and signals."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(program, [program, *arguments])  # noqa: S606 - a fixed tool of this environment


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@service_app.command("mlflow")
def mlflow_server(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 5000,
    args: ExtraArguments = None,
) -> None:
    """The MLflow tracking server and model registry (`mlflow server`).

    Its stores come from MLflow's own variables (MLFLOW_BACKEND_STORE_URI,
    MLFLOW_ARTIFACTS_DESTINATION); pass `-- --app-name basic-auth` to require a login
    (MLFLOW_AUTH_CONFIG_PATH, MLFLOW_AUTH_ADMIN_PASSWORD). See docs/deployment.md.
    """
    arguments = ["-m", "mlflow", "server", "--host", host, "--port", str(port)]
    _exec(sys.executable, [*arguments, *(args or [])])


@service_app.command("dagster-webserver")
def dagster_webserver(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 3000,
    args: ExtraArguments = None,
) -> None:
    """The Dagster UI on the instance in MODELCYCLE_DAGSTER_HOME (its workspace.yaml)."""
    from modelcycle.orchestration.instance import prepare_instance

    _home, workspace = prepare_instance(settings_from(ctx))
    arguments = ["-w", str(workspace), "-h", host, "-p", str(port)]
    _exec(_tool("dagster-webserver"), [*arguments, *(args or [])])


@service_app.command("dagster-daemon")
def dagster_daemon(ctx: typer.Context, args: ExtraArguments = None) -> None:
    """The Dagster daemon: schedule, sensors, run queue, monitoring and retries."""
    from modelcycle.orchestration.instance import prepare_instance

    _home, workspace = prepare_instance(settings_from(ctx))
    _exec(_tool("dagster-daemon"), ["run", "-w", str(workspace), *(args or [])])


@service_app.command("dagster-code-server")
def dagster_code_server(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 4000,
    args: ExtraArguments = None,
) -> None:
    """modelcycle's Dagster code location as a gRPC server for the UI, the daemon and run Jobs."""
    arguments = ["code-server", "start", "-m", DEFINITIONS_MODULE, "-h", host, "-p", str(port)]
    _exec(_tool("dagster"), [*arguments, *(args or [])])
