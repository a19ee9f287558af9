"""dagster.yaml stays in step with the settings: modelcycle's own file follows them, the user's
file is kept (a contradicting one is refused, see tests/cli/test_bad_input.py)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from modelcycle.orchestration.instance import instance_config, prepare_instance
from modelcycle.settings import Settings
from tests.support.servers import sqlalchemy_postgres_url

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/dagster"


def _storage_of(dagster_home: Path) -> str:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return type(instance.run_storage).__name__


def test_dagster_yaml_written_for_postgresql_follows_the_settings_back_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELCYCLE_DAGSTER_POSTGRES_URL", raising=False)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    # exactly what an earlier modelcycle wrote while MODELCYCLE_DAGSTER_POSTGRES_URL was set
    on_postgres = instance_config(Settings(dagster_postgres_url=POSTGRES_URL))
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(on_postgres, sort_keys=False))

    prepare_instance(Settings(dagster_home=dagster_home))

    written = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
    assert written == instance_config(Settings()) and "storage" not in written
    assert _storage_of(dagster_home) == "SqliteRunStorage"
    assert not list(dagster_home.glob(".dagster.yaml.*"))  # nothing left from the atomic write


def test_dagster_yaml_edited_by_hand_is_kept_when_it_agrees_with_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELCYCLE_DAGSTER_POSTGRES_URL", raising=False)
    dagster_home = tmp_path / "dagster"
    settings = Settings(dagster_home=dagster_home)
    prepare_instance(settings)
    instance_file = dagster_home / "dagster.yaml"
    edited = instance_file.read_text().replace(
        "poll_interval_seconds: 15", "poll_interval_seconds: 5"
    )
    assert edited != instance_file.read_text()
    instance_file.write_text(edited)

    prepare_instance(settings)

    assert instance_file.read_text() == edited


@pytest.mark.postgres
def test_dagster_yaml_written_for_sqlite_follows_the_settings_to_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.delenv("MODELCYCLE_DAGSTER_POSTGRES_URL", raising=False)
    dagster_home = tmp_path / "dagster"
    prepare_instance(Settings(dagster_home=dagster_home))
    assert _storage_of(dagster_home) == "SqliteRunStorage"

    database = sqlalchemy_postgres_url(postgres_url)
    monkeypatch.setenv("MODELCYCLE_DAGSTER_POSTGRES_URL", database)
    prepare_instance(Settings(dagster_home=dagster_home))

    assert _storage_of(dagster_home) == "PostgresRunStorage"
    assert database not in (dagster_home / "dagster.yaml").read_text()  # read from the environment
