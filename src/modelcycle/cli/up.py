"""`modelcycle up` and `modelcycle backfill`: the local stack, and re-running days in Dagster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelcycle.cli.context import settings_from, stderr, stdout
from modelcycle.cli.serve_access import check_open_stack, open_api_exposure
from modelcycle.errors import InvalidInputError, ModelcycleError
from modelcycle.lake import layout

STARTUP_TIMEOUT_SECONDS = 180.0


class StackError(ModelcycleError):
    """A service of the local stack did not start."""

    exit_code = 8


def _tool(name: str) -> str:
    """A console script of this environment (dagster-webserver, dagster-daemon, dagster)."""
    return str(Path(sys.executable).with_name(name))


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None
    url: str | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], log_dir: Path) -> None:
        log = (log_dir / f"{self.name.lower().replace(' ', '-')}.log").open("ab")
        self.process = subprocess.Popen(
            self.command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_healthy(self, deadline: float, log_dir: Path) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"{self.name} exited with {self.process.returncode}; see {log_dir}"
                )
            if self.health_url is None or _answers(self.health_url):
                return
            time.sleep(0.5)
        raise StackError(f"{self.name} did not answer {self.health_url} in time; see {log_dir}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URLs
            return bool(response.status == 200)
    except OSError:
        return False


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
    from modelcycle.orchestration.instance import prepare_instance

    settings = settings_from(ctx)
    tracking = settings.resolved_tracking_uri
    embedded_mlflow = not tracking.startswith(("http://", "https://"))
    check_open_stack(
        host,
        allow_open=allow_open,
        exposed=_exposed(
            host, settings.api_key_set, embedded_mlflow, mlflow_port, dagster_port, api_port
        ),
    )
    dagster_home, workspace = prepare_instance(settings)
    log_dir = settings.home.resolve() / "logs"  # not DAGSTER_HOME/logs: Dagster owns that one
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    services: list[Service] = []
    if embedded_mlflow:
        mlflow_url = f"http://{host}:{mlflow_port}"
        services.append(
            Service(
                "MLflow",
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    tracking,
                    "--default-artifact-root",
                    settings.resolved_artifact_url,
                    "--host",
                    host,
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                f"{mlflow_url}/health",
                mlflow_url,
            )
        )
        env["MODELCYCLE_TRACKING_URI"] = mlflow_url
        # MLflow's job runner (GenAI evaluation jobs, five polling workers) is not used here
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    dagster_url = f"http://{host}:{dagster_port}"
    api_url = f"http://{host}:{api_port}"
    services += [
        Service(
            "Dagster UI",
            [_tool("dagster-webserver"), "-w", str(workspace), "-h", host, "-p", str(dagster_port)],
            f"{dagster_url}/server_info",
            dagster_url,
        ),
        Service(
            "Dagster daemon", [_tool("dagster-daemon"), "run", "-w", str(workspace)], None, None
        ),
        Service(
            "prediction API",
            [sys.executable, "-m", "modelcycle", "serve", "--host", host, "--port", str(api_port)]
            + (["--allow-open"] if allow_open else []),
            f"{api_url}/healthz",
            f"{api_url}/docs",
        ),
    ]
    _run_stack(services, env, log_dir)


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


def _run_stack(services: list[Service], env: dict[str, str], log_dir: Path) -> None:
    try:
        for service in services:
            with stderr.status(f"starting {service.name}"):
                service.start(env, log_dir)
                service.wait_healthy(time.monotonic() + STARTUP_TIMEOUT_SECONDS, log_dir)
        table = Table(title="modelcycle is up (Ctrl-C stops everything)")
        table.add_column("service")
        table.add_column("address")
        for service in services:
            table.add_row(service.name, service.url or "(background)")
        table.add_row("logs", str(log_dir))
        stdout.print(table)
        sys.stdout.flush()
        while all(s.process is not None and s.process.poll() is None for s in services):
            time.sleep(1)
        dead = next(s for s in services if s.process is not None and s.process.poll() is not None)
        raise StackError(f"{dead.name} stopped unexpectedly; see {log_dir}")
    except KeyboardInterrupt:
        stderr.print("stopping")
    finally:
        for service in reversed(services):
            service.stop()


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
        _tool("dagster"),
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
