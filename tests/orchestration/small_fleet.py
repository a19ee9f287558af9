"""The small fleet the in-process daily-job tests run on: 16 devices, 2 customers, 3 days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from modelcycle.simulate import FleetSpec, simulate_fleet
from modelcycle.store.database import create_store_engine, upgrade
from tests.support.registry import registry_env
from tests.support.servers import MlflowServer

START = date(2026, 1, 1)


def small_fleet_env(
    tmp_path: Path, server: MlflowServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Simulate the fleet, create its store, and point modelcycle at them and at `server`."""
    simulate_fleet(
        FleetSpec(devices=16, sensors=8, days=3, start=START, seed=3, customers=2),
        tmp_path / "raw",
    )
    database_url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    engine = create_store_engine(database_url)
    upgrade(engine)
    engine.dispose()
    env = {
        **registry_env(tmp_path, server, prefix),
        "MODELCYCLE_DATABASE_URL": database_url,
        "MODELCYCLE_ORCHESTRATION_START": START.isoformat(),
        "MODELCYCLE_TRAINING_WINDOW_DAYS": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
