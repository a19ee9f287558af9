"""Dagster's own storage on PostgreSQL: the instance `modelcycle up` prepares, used by a run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from modelcycle.orchestration.definitions import build_definitions
from modelcycle.orchestration.instance import prepare_instance
from modelcycle.orchestration.sensors import DAILY_JOB
from modelcycle.settings import Settings
from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.servers import sqlalchemy_postgres_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAY = date(2026, 1, 1)


def test_runs_and_materializations_are_stored_in_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate_fleet(FleetSpec(devices=8, sensors=8, days=1, start=DAY, seed=11), tmp_path / "raw")
    database = sqlalchemy_postgres_url(postgres_url)
    for name, value in {
        "MODELCYCLE_HOME": str(tmp_path),
        "MODELCYCLE_ORCHESTRATION_START": DAY.isoformat(),
        "MODELCYCLE_DAGSTER_POSTGRES_URL": database,
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    home, _workspace = prepare_instance(settings)
    # the URL (a credential in production) is read from the environment, never written down
    assert database not in (home / "dagster.yaml").read_text()

    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = job.execute_in_process(
            partition_key=DAY.isoformat(),
            instance=instance,
            asset_selection=[dg.AssetKey("readings"), dg.AssetKey("features")],
        )
        assert result.success
        run_id = result.run_id

    engine = sa.create_engine(database)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT status FROM runs WHERE run_id = :id"), {"id": run_id}
            ).scalar_one()
            materialized = connection.execute(
                sa.text(
                    "SELECT asset_key FROM event_logs "
                    "WHERE run_id = :id AND dagster_event_type = 'ASSET_MATERIALIZATION'"
                ),
                {"id": run_id},
            ).scalars()
            keys = sorted(materialized)
    finally:
        engine.dispose()
    assert stored == "SUCCESS"
    assert keys == ['["features"]', '["readings"]']
    assert list(home.rglob("*.db")) == []  # no SQLite storage beside it
