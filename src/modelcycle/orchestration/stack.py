"""The local stack `modelcycle up` runs: which services, started in order, each waited for until it
answers, watched while they run, and all stopped together (Ctrl-C or one of them dying).

Process supervision only; the CLI shows progress and the table of addresses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from modelcycle.errors import ModelcycleError
from modelcycle.orchestration.instance import prepare_instance
from modelcycle.registry.uris import artifact_store_environment, is_tracking_server
from modelcycle.settings import Settings

STARTUP_TIMEOUT_SECONDS = 180.0


class StackError(ModelcycleError):
    """A service of the local stack did not start."""

    exit_code = 8


def tool(name: str) -> str:
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


@dataclass(frozen=True)
class Stack:
    """The services in start order, their environment, and where their logs go."""

    services: list[Service]
    env: dict[str, str]
    log_dir: Path


def embedded_mlflow(settings: Settings) -> bool:
    """True when MLflow is the embedded store, so `up` starts a server on it."""
    return not is_tracking_server(settings.resolved_tracking_uri)


def local_stack(
    settings: Settings,
    *,
    host: str,
    mlflow_port: int,
    dagster_port: int,
    api_port: int,
    allow_open: bool,
) -> Stack:
    """MLflow (for the embedded store), the Dagster UI and daemon, and the prediction API."""
    tracking = settings.resolved_tracking_uri
    dagster_home, workspace = prepare_instance(settings)
    log_dir = settings.home.resolve() / "logs"  # not DAGSTER_HOME/logs: Dagster owns that one
    log_dir.mkdir(parents=True, exist_ok=True)
    # The endpoint settings reach MLflow's artifact stores in every process, its server's too.
    env = {**artifact_store_environment(settings), **os.environ, "DAGSTER_HOME": str(dagster_home)}
    services: list[Service] = []
    if embedded_mlflow(settings):
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
            [tool("dagster-webserver"), "-w", str(workspace), "-h", host, "-p", str(dagster_port)],
            f"{dagster_url}/server_info",
            dagster_url,
        ),
        Service(
            "Dagster daemon", [tool("dagster-daemon"), "run", "-w", str(workspace)], None, None
        ),
        Service(
            "prediction API",
            [sys.executable, "-m", "modelcycle", "serve", "--host", host, "--port", str(api_port)]
            + (["--allow-open"] if allow_open else []),
            f"{api_url}/healthz",
            f"{api_url}/docs",
        ),
    ]
    return Stack(services=services, env=env, log_dir=log_dir)


def supervise(
    stack: Stack,
    *,
    starting: Callable[[Service], AbstractContextManager[object]],
    started: Callable[[], None],
    stopping: Callable[[], None],
) -> None:
    """Start each service and wait until it answers (`starting` wraps each), call `started`, then
    watch them; any one dying is a StackError. Ctrl-C calls `stopping`. All stop in reverse order
    whatever happened."""
    services, log_dir = stack.services, stack.log_dir
    try:
        for service in services:
            with starting(service):
                service.start(stack.env, log_dir)
                service.wait_healthy(time.monotonic() + STARTUP_TIMEOUT_SECONDS, log_dir)
        started()
        while all(s.process is not None and s.process.poll() is None for s in services):
            time.sleep(1)
        dead = next(s for s in services if s.process is not None and s.process.poll() is not None)
        raise StackError(f"{dead.name} stopped unexpectedly; see {log_dir}")
    except KeyboardInterrupt:
        stopping()
    finally:
        for service in reversed(services):
            service.stop()
