"""A registry with two trained versions of both models, on a real MLflow server with S3 artifacts.

Built once per session: a simulated fleet is ingested, then trained twice, so version 1 is the
`champion` and version 2 a `challenger` that tests can promote to watch the API pick it up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.api import ApiServer, start_api
from tests.support.cli import invoke_cli
from tests.support.registry import PrefixedModels, registry_env
from tests.support.servers import MlflowServer, unique_name

START = date(2026, 1, 1)
DAYS = 3


@dataclass(frozen=True)
class TrainedRegistry(PrefixedModels):
    home: Path
    server: MlflowServer
    prefix: str
    env: dict[str, str]


def ingest_fleet(home: Path) -> None:
    spec = FleetSpec(devices=24, sensors=10, days=DAYS, start=START, seed=11)
    simulate_fleet(spec, home / "raw")
    for offset in range(DAYS):
        day = (START + timedelta(days=offset)).isoformat()
        result = invoke_cli("ingest", "--date", day, env={"MODELCYCLE_HOME": str(home)})
        assert result.returncode == 0, result.stderr


def train_twice(env: dict[str, str]) -> None:
    last = (START + timedelta(days=DAYS - 1)).isoformat()
    for seed in ("42", "7"):
        result = invoke_cli(
            "train", "--date", last, "--window-days", str(DAYS), "--seed", seed, "--json", env=env
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)


@pytest.fixture(scope="session")
def fleet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("serving-home")
    ingest_fleet(home)
    return home


@pytest.fixture(scope="session")
def trained_registry(fleet_home: Path, mlflow_sqlite_server: MlflowServer) -> TrainedRegistry:
    prefix = unique_name("serving")
    env = registry_env(fleet_home, mlflow_sqlite_server, prefix)
    train_twice(env)
    return TrainedRegistry(home=fleet_home, server=mlflow_sqlite_server, prefix=prefix, env=env)


@pytest.fixture
def api_env(trained_registry: TrainedRegistry, tmp_path: Path) -> dict[str, str]:
    """Settings for one API process: its own cache, and a poll fast enough for tests."""
    return {
        **trained_registry.env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path / "cache"),
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
    }


@pytest.fixture
def api(api_env: dict[str, str], server_log_dir: Path) -> Iterator[ApiServer]:
    """A running API serving the champions; ready when the test starts."""
    with start_api(api_env, server_log_dir) as server:
        server.wait_ready()
        yield server
