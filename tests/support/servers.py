"""Start real services on loopback for the tests: moto's S3 server, PostgreSQL databases, MLflow.

Every server runs as its own process group with output in a log file, and is stopped as a group,
so a test run never leaves a stray uvicorn worker behind. When a server fails to come up, the
error carries the tail of its log: that is where the reason is.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import requests
from cryptography.fernet import Fernet
from psycopg2 import sql

LOOPBACK = "127.0.0.1"
S3_REGION = "eu-west-1"
POSTGRES_ADMIN_URL = f"postgresql://postgres@{LOOPBACK}:5432/postgres"
# How long `mlflow server` may take to answer /health: it imports its whole FastAPI app first, which
# took 100 s on the shared 2-core machine under a load of 10 (a healthy start fails nothing faster).
MLFLOW_STARTUP_TIMEOUT = 180.0
LOG_TAIL_CHARS = 4000


class ServerStartError(RuntimeError):
    """A server process died or did not answer its health check in time."""


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL at 127.0.0.1:5432 does not accept connections."""


@dataclass(frozen=True)
class S3Server:
    """moto's standalone S3 server; `url` is the endpoint clients are given."""

    url: str
    log_path: Path


@dataclass(frozen=True)
class MlflowServer:
    """A running `mlflow server`; `env` is what a client process needs to use it and its S3."""

    tracking_uri: str
    artifact_root: str
    backend_store_uri: str
    env: dict[str, str]
    log_path: Path


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def unique_name(prefix: str) -> str:
    """A lowercase name that is valid as an S3 bucket and a PostgreSQL database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def s3_environment_variables(endpoint_url: str) -> dict[str, str]:
    """The variables that point boto3, s3fs, MLflow and modelcycle at one S3 endpoint.

    MLflow's S3 artifact store reads only `MLFLOW_S3_ENDPOINT_URL`; boto3 and s3fs read
    `AWS_ENDPOINT_URL`; modelcycle's settings read `MODELCYCLE_S3_ENDPOINT_URL`.
    """
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": S3_REGION,
        "MLFLOW_S3_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL": endpoint_url,
        "MODELCYCLE_S3_ENDPOINT_URL": endpoint_url,
    }


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the endpoint, independent of the process environment."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=S3_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_s3_bucket(endpoint_url: str, prefix: str = "test") -> str:
    """Create a uniquely named bucket in eu-west-1 and return its name."""
    name = unique_name(prefix)
    s3_client(endpoint_url).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
    )
    return name


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except FileNotFoundError:
        return "(no log written)"


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"server exited with code {process.returncode} before {url} answered; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.25)
    raise ServerStartError(
        f"{url} did not answer 200 within {timeout:.0f} s; log {log_path}:\n{_log_tail(log_path)}"
    )


@contextmanager
def run_server_process(
    command: list[str],
    *,
    health_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group until the block ends, once `health_url` is 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            _wait_until_healthy(health_url, process, log_path, timeout)
            yield process
        finally:
            _stop_process_group(process)


@contextmanager
def start_s3_server(log_dir: Path) -> Iterator[S3Server]:
    """moto's standalone server in a subprocess: a real HTTP endpoint speaking S3."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    log_path = log_dir / "moto.log"
    command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    with run_server_process(
        command, health_url=f"{url}/moto-api/", log_path=log_path, timeout=30.0
    ):
        yield S3Server(url=url, log_path=log_path)


def create_postgres_database() -> str:
    """Create an empty database with a unique name and return its URL.

    Raises PostgresUnavailableError when the server does not accept connections.
    """
    name = unique_name("modelcycle_test").replace("-", "_")
    _run_admin_statement(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql://postgres@{LOOPBACK}:5432/{name}"


def drop_postgres_database(url: str) -> None:
    """Drop the database behind `url`, closing any connections a server still holds to it."""
    name = url.rsplit("/", 1)[1]
    _run_admin_statement(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def sqlalchemy_postgres_url(url: str) -> str:
    """The SQLAlchemy spelling of a libpq URL, naming the psycopg2 driver we ship.

    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which is not installed.
    """
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def _run_admin_statement(statement: sql.Composed) -> None:
    try:
        connection = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=5)
    except psycopg2.OperationalError as error:
        raise PostgresUnavailableError(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} "
            f"(user postgres, trust auth): {str(error).strip()}"
        ) from error
    try:
        # CREATE/DROP DATABASE cannot run inside a transaction.
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def create_postgres_database_or_skip() -> str:
    """`create_postgres_database` for a fixture: without PostgreSQL, skip the test, or fail in CI.

    In CI (`CI=true`) a missing PostgreSQL is a broken build, never a silently shorter suite.
    """
    try:
        return create_postgres_database()
    except PostgresUnavailableError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{error} (CI=true, so PostgreSQL is required)", pytrace=False)
        pytest.skip(f"{error}; start PostgreSQL on 127.0.0.1:5432 to run this test")


def mlflow_server_command(
    *,
    backend_store_uri: str,
    default_artifact_root: str,
    port: int,
    proxy_artifacts: bool = False,
) -> list[str]:
    """The `mlflow server` command line for a loopback test server.

    By default `--no-serve-artifacts` makes clients write artifacts straight to the S3 root
    instead of proxying them through the server. With `proxy_artifacts` the root is the server's
    `--artifacts-destination` instead: clients send artifacts to the server, which alone needs the
    object store's credentials. One worker keeps startup fast and memory low.
    """
    if proxy_artifacts:
        artifacts = ["--artifacts-destination", default_artifact_root, "--serve-artifacts"]
    else:
        artifacts = ["--default-artifact-root", default_artifact_root, "--no-serve-artifacts"]
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        *artifacts,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


@contextmanager
def start_mlflow_server(
    backend_store_uri: str,
    default_artifact_root: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    proxy_artifacts: bool = False,
) -> Iterator[MlflowServer]:
    """Run the real `mlflow server` CLI on a free loopback port until the block ends.

    `env` (the S3 variables) goes to the server and into the yielded client environment.
    `proxy_artifacts`: the server stores artifacts at `default_artifact_root` on the clients'
    behalf (`--artifacts-destination`).
    """
    port = free_port()
    tracking_uri = f"http://{LOOPBACK}:{port}"
    log_path = log_dir / f"mlflow-{port}.log"
    server_env = {
        **env,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # Registry webhooks to receivers on loopback over plain HTTP: allowed for tests only.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        # The server caches each event's webhook list for 60 s: a test's new webhook must count.
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        # MLflow 3's job runner (five huey consumers polling all the time) serves GenAI features
        # modelcycle does not use; on two cores it slowed the whole suite.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = mlflow_server_command(
        backend_store_uri=backend_store_uri,
        default_artifact_root=default_artifact_root,
        port=port,
        proxy_artifacts=proxy_artifacts,
    )
    with run_server_process(
        command,
        health_url=f"{tracking_uri}/health",
        log_path=log_path,
        env=server_env,
        timeout=MLFLOW_STARTUP_TIMEOUT,
    ):
        yield MlflowServer(
            tracking_uri=tracking_uri,
            artifact_root=default_artifact_root,
            backend_store_uri=backend_store_uri,
            env={
                **server_env,
                "MLFLOW_TRACKING_URI": tracking_uri,
                "MODELCYCLE_TRACKING_URI": tracking_uri,
            },
            log_path=log_path,
        )
