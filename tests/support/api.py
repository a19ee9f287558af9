"""Run `modelcycle serve` (a real uvicorn) on a free loopback port for a test."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.servers import LOOPBACK, free_port, run_server_process

API_KEY = "test-key-7f3a"
API_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class ApiServer:
    url: str
    log_path: Path
    pid: int | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=self.auth, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, body: object) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, headers=self.auth, timeout=10)

    def served_version(self, name: str) -> str | None:
        for model in self.get("/v1/models").json()["models"]:
            if model["name"] == name:
                version: str | None = model["version"]
                return version
        raise AssertionError(f"{name} is not served")

    def wait_for_version(self, name: str, version: str, timeout: float = 30.0) -> float:
        """Seconds until `name` is served at `version`; fails the test after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.served_version(name) == version:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"{name} still at {self.served_version(name)}, not {version}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"API not ready after {timeout} s; log {self.log_path}")


@contextmanager
def start_api(env: dict[str, str], log_dir: Path) -> Iterator[ApiServer]:
    """`modelcycle serve` with `env` (plus the test API key), until the block ends."""
    port = free_port()
    log_path = log_dir / f"api-{port}.log"
    command = [sys.executable, "-m", "modelcycle", "serve", "--host", LOOPBACK, "--port", str(port)]
    with run_server_process(
        command,
        health_url=f"http://{LOOPBACK}:{port}/healthz",
        log_path=log_path,
        env={"MODELCYCLE_API_KEYS": API_KEY, "MODELCYCLE_LOG_FORMAT": "json", **env},
        timeout=API_STARTUP_TIMEOUT,
    ) as process:
        yield ApiServer(url=f"http://{LOOPBACK}:{port}", log_path=log_path, pid=process.pid)
