"""A monitored fleet: simulated with drift from day 4, champions trained on days 1-3.

Built once per session against the real MLflow server (SQLite backend, artifacts on moto S3).
Days 4-7 are ingested for scoring and evaluation; the ledger is kept until day 8, so day 8 has
no labels yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.settings import Settings
from modelcycle.simulate import FleetSpec, simulate_fleet
from modelcycle.storage import open_store as open_object_store
from modelcycle.store.database import create_store_engine, upgrade
from modelcycle.training.recipe import train_window
from tests.support.registry import PrefixedModels, registry_env
from tests.support.servers import MlflowServer, unique_name

START = date(2026, 1, 1)
SIMULATED_DAYS = 8
INGESTED_DAYS = 7
TRAIN_DAYS = 3
DRIFT_START = START + timedelta(days=3)


def day(n: int) -> date:
    """Day n of the simulation, 1-based."""
    return START + timedelta(days=n - 1)


@dataclass(frozen=True)
class MonitoredFleet(PrefixedModels):
    home: Path
    env: dict[str, str]
    prefix: str


def _build(home: Path, env: dict[str, str]) -> None:
    spec = FleetSpec(
        devices=40,
        sensors=10,
        days=SIMULATED_DAYS,
        start=START,
        seed=5,
        customers=3,
        drift_start=DRIFT_START,
    )
    simulate_fleet(spec, home / "raw")
    raw = open_object_store(str(home / "raw"))
    lake = open_object_store(str(home / "lake"))
    for n in range(1, INGESTED_DAYS + 1):
        ingest_day(day(n), raw=raw, lake=lake, options=IngestOptions())
    train_window(Settings(), lake=lake, raw=raw, end=day(TRAIN_DAYS), window_days=TRAIN_DAYS)


@pytest.fixture(scope="session")
def monitored_fleet(
    tmp_path_factory: pytest.TempPathFactory, mlflow_sqlite_server: MlflowServer
) -> MonitoredFleet:
    home = tmp_path_factory.mktemp("monitored")
    prefix = unique_name("monitor")
    env = registry_env(home, mlflow_sqlite_server, prefix)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        _build(home, env)
    return MonitoredFleet(home=home, env=env, prefix=prefix)


@pytest.fixture
def fleet_env(
    monitored_fleet: MonitoredFleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The fleet's settings with a fresh, migrated monitoring store per test (also in-process)."""
    database_url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    engine = create_store_engine(database_url)
    upgrade(engine)
    engine.dispose()
    env = {**monitored_fleet.env, "MODELCYCLE_DATABASE_URL": database_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
