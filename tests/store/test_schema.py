"""The monitoring store's schema: migrated by `db upgrade`, refused by commands when behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from modelcycle.settings import Settings
from modelcycle.store import open_store
from modelcycle.store.database import create_store_engine, head_revision, upgrade
from modelcycle.store.tables import Base
from tests.support.cli import invoke_cli
from tests.support.servers import sqlalchemy_postgres_url

TABLES = {
    "alembic_version",
    "alert_events",
    "api_keys",
    "users",
    "release_requests",
    "release_decisions",
    "alert_states",
    "deliveries",
    "drift_results",
    "drift_summaries",
    "evaluations",
    "score_runs",
    "training_runs",
}


def _schema_round_trip(database_url: str, home: Path) -> None:
    env = {"MODELCYCLE_HOME": str(home), "MODELCYCLE_DATABASE_URL": database_url}
    refused = invoke_cli("alerts", "list", env=env)
    assert refused.returncode == 7
    assert "no modelcycle schema" in refused.stderr
    assert "run `modelcycle db upgrade`" in refused.stderr
    assert "Traceback" not in refused.stderr

    current = invoke_cli("db", "current", env=env)
    assert current.returncode == 1 and "out of date" in current.stdout

    upgraded = invoke_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"empty → {head_revision()}" in upgraded.stdout
    again = invoke_cli("db", "upgrade", env=env)
    assert f"already at {head_revision()}" in again.stdout

    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
    listed = invoke_cli("alerts", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"


def test_sqlite_store_is_refused_until_upgraded(tmp_path: Path) -> None:
    _schema_round_trip(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)


@pytest.mark.postgres
def test_postgresql_store_is_refused_until_upgraded(tmp_path: Path, postgres_url: str) -> None:
    _schema_round_trip(sqlalchemy_postgres_url(postgres_url), tmp_path)


def _migrations_match_the_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_migrations_build_the_tables_the_code_describes_on_sqlite(tmp_path: Path) -> None:
    _migrations_match_the_tables(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_the_migrations_build_the_tables_the_code_describes_on_postgresql(
    postgres_url: str,
) -> None:
    _migrations_match_the_tables(sqlalchemy_postgres_url(postgres_url))


def test_the_embedded_default_store_is_created_on_first_use(tmp_path: Path) -> None:
    result = invoke_cli("alerts", "list", "--json", env={"MODELCYCLE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "modelcycle.db").exists()


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    env = {
        "MODELCYCLE_HOME": str(tmp_path),
        "MODELCYCLE_DATABASE_URL": "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/none",
    }
    result = invoke_cli("alerts", "list", env=env)
    assert result.returncode == 4
    assert "cannot reach the monitoring store" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_the_embedded_store_opened_from_several_threads_at_once_is_created_once(
    tmp_path: Path,
) -> None:
    """The API's pollers (accuracy, API keys) open the store together when it starts."""
    settings = Settings(home=tmp_path)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_once() -> None:
        start.wait()
        try:
            open_store(settings).close()
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=open_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_connections_racing_to_a_new_embedded_file_all_get_in(tmp_path: Path) -> None:
    """SQLite refuses at once one of two connections that switch a new file to WAL together.

    The API, the Dagster daemon and a CLI command each open the embedded store; none of them may
    fail with "database is locked" because another opened it in the same instant.
    """
    errors: list[BaseException] = []
    for attempt in range(60):
        url = f"sqlite:///{tmp_path / f'race-{attempt}.db'}"
        start = threading.Barrier(8)

        def connect(url: str, start: threading.Barrier, creates: bool) -> None:
            engine = create_store_engine(url)  # one each, as each process and poller has
            start.wait()
            try:
                with engine.begin() as connection:
                    if creates:
                        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (a INTEGER)")
                    connection.exec_driver_sql("SELECT name FROM sqlite_master").fetchall()
            except Exception as error:  # noqa: BLE001 - collected for the assertion below
                errors.append(error)
            engine.dispose()

        threads = [threading.Thread(target=connect, args=(url, start, n == 0)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine = create_store_engine(url)
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        engine.dispose()
        assert mode == "wal"
    assert errors == []
