"""Fixtures that give tests real services on loopback: S3 (moto), PostgreSQL and MLflow.

Servers start once per session; buckets and databases are fresh per test. The launchers live in
`tests.support.servers`; these fixtures only wire them to pytest's scopes.

`make unit` runs the suite on two pytest-xdist workers: each worker has its own session (servers on
their own free ports, its own temporary folders) and builds the session fixtures its tests need.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.monitored import fleet_env, monitored_fleet
from tests.support.servers import (
    MlflowServer,
    S3Server,
    create_postgres_database_or_skip,
    create_s3_bucket,
    drop_postgres_database,
    s3_environment_variables,
    sqlalchemy_postgres_url,
    start_mlflow_server,
    start_s3_server,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dashboard-screenshots",
        default=None,
        help="Save the dashboard tests' screenshots here (e.g. docs/screenshots) instead of "
        "under each test's tmp_path.",
    )


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every session server writes its log (printed in start-up errors)."""
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def s3_server(server_log_dir: Path) -> Iterator[S3Server]:
    """moto's S3 server for the whole session; `.url` is its endpoint."""
    with start_s3_server(server_log_dir) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, uniquely named bucket in eu-west-1 on the session's moto server."""
    return create_s3_bucket(s3_server.url)


@pytest.fixture
def s3_environment(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> dict[str, str]:
    """Point boto3, s3fs, MLflow and modelcycle at moto; the dict is for child processes."""
    env = s3_environment_variables(s3_server.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database, dropped afterwards; no server means skip (in CI: fail)."""
    url = create_postgres_database_or_skip()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def mlflow_sqlite_server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, server_log_dir: Path
) -> Iterator[MlflowServer]:
    """MLflow on a SQLite file, artifacts in its own bucket on moto."""
    store = tmp_path_factory.mktemp("mlflow-sqlite") / "mlflow.db"
    bucket = create_s3_bucket(s3_server.url, prefix="mlflow-sqlite")
    with start_mlflow_server(
        backend_store_uri=f"sqlite:///{store}",
        default_artifact_root=f"s3://{bucket}/mlflow",
        env=s3_environment_variables(s3_server.url),
        log_dir=server_log_dir,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_postgres_server(s3_server: S3Server, server_log_dir: Path) -> Iterator[MlflowServer]:
    """MLflow on a throw-away PostgreSQL database, artifacts in its own bucket on moto."""
    url = create_postgres_database_or_skip()
    try:
        bucket = create_s3_bucket(s3_server.url, prefix="mlflow-postgres")
        with start_mlflow_server(
            backend_store_uri=sqlalchemy_postgres_url(url),
            default_artifact_root=f"s3://{bucket}/mlflow",
            env=s3_environment_variables(s3_server.url),
            log_dir=server_log_dir,
        ) as server:
            yield server
    finally:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def mlflow_server(request: pytest.FixtureRequest) -> MlflowServer:
    """Each MLflow server in turn, so a test proves it works on both backends."""
    server: MlflowServer = request.getfixturevalue(f"mlflow_{request.param}_server")
    return server


@pytest.fixture
def mlflow_client_env(
    monkeypatch: pytest.MonkeyPatch, mlflow_sqlite_server: MlflowServer
) -> dict[str, str]:
    """Point in-process MLflow and boto3 at the SQLite-backed server and moto for one test."""
    for name, value in mlflow_sqlite_server.env.items():
        monkeypatch.setenv(name, value)
    return mlflow_sqlite_server.env


__all__ = ["fleet_env", "monitored_fleet"]  # fixtures shared by tests/monitoring and tests/alerting
