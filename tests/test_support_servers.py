"""The service fixtures are real: moto speaks S3 over HTTP, MLflow stores runs and S3 artifacts."""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import mlflow
import psycopg2
import pytest

from tests.support.registry import server_client
from tests.support.servers import MlflowServer, S3Server, free_port, s3_client


def _artifact_keys(server: MlflowServer, run_id: str) -> list[str]:
    """The object keys under the run's artifact folder in the server's bucket."""
    bucket, _, prefix = server.artifact_root.removeprefix("s3://").partition("/")
    client = s3_client(server.env["MLFLOW_S3_ENDPOINT_URL"])
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", []) if run_id in item["Key"]]


def _log_run_with_artifact(
    server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """Log a param, a metric and a file artifact to a new experiment; return the run id."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    client = server_client(server.tracking_uri)
    experiment_id = client.create_experiment(tmp_path.name)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "learning_rate", "0.1")
    client.log_metric(run.info.run_id, "auc", 0.87)
    report = tmp_path / "report.txt"
    report.write_text("hello from the test\n")
    client.log_artifact(run.info.run_id, str(report))
    client.set_terminated(run.info.run_id)
    run_id: str = run.info.run_id
    return run_id


def test_free_port_can_be_bound() -> None:
    """It returns a loopback port a server can listen on."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_s3_server_stores_and_returns_objects(s3_server: S3Server, s3_bucket: str) -> None:
    """boto3 puts an object over HTTP to moto and reads the same bytes back."""
    client = s3_client(s3_server.url)
    client.put_object(Bucket=s3_bucket, Key="raw/day=1/part.bin", Body=b"\x00payload")
    body = client.get_object(Bucket=s3_bucket, Key="raw/day=1/part.bin")["Body"].read()
    assert body == b"\x00payload"
    location = client.get_bucket_location(Bucket=s3_bucket)["LocationConstraint"]
    assert location == "eu-west-1"


def test_s3_environment_lets_default_boto3_reach_moto(
    s3_environment: dict[str, str], s3_bucket: str
) -> None:
    """With only the environment set, a plain boto3 client lands on moto."""
    assert s3_environment["AWS_ENDPOINT_URL"] == s3_environment["MLFLOW_S3_ENDPOINT_URL"]
    client = boto3.client("s3")
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    assert client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"v"


@pytest.mark.postgres
def test_postgres_url_is_an_empty_database(postgres_url: str) -> None:
    """The fixture hands out a database we can create tables in."""
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe (id integer)")
        cursor.execute("SELECT count(*) FROM probe")
        assert cursor.fetchone() == (0,)


@pytest.mark.slow
def test_mlflow_records_params_and_metrics(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run logged through the REST API reads back with its param and metric."""
    run_id = _log_run_with_artifact(mlflow_server, monkeypatch, tmp_path)
    run = server_client(mlflow_server.tracking_uri).get_run(run_id)
    assert run.data.params == {"learning_rate": "0.1"}
    assert run.data.metrics == {"auc": 0.87}
    assert run.info.artifact_uri.startswith(mlflow_server.artifact_root)


@pytest.mark.slow
def test_mlflow_artifacts_land_in_s3(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The artifact file is an object in the moto bucket, not a file on the server's disk."""
    run_id = _log_run_with_artifact(mlflow_server, monkeypatch, tmp_path)
    keys = _artifact_keys(mlflow_server, run_id)
    assert any(key.endswith(f"{run_id}/artifacts/report.txt") for key in keys), keys


@pytest.mark.slow
@pytest.mark.postgres
def test_mlflow_postgres_server_keeps_its_tables_in_postgres(
    mlflow_postgres_server: MlflowServer,
) -> None:
    """MLflow migrated its schema into the throw-away PostgreSQL database."""
    libpq_url = mlflow_postgres_server.backend_store_uri.replace("+psycopg2", "")
    with (
        psycopg2.connect(libpq_url) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = {row[0] for row in cursor.fetchall()}
    assert {"experiments", "runs", "params", "metrics"} <= tables


@pytest.mark.slow
def test_mlflow_client_env_points_in_process_mlflow_at_the_server(
    mlflow_client_env: dict[str, str], tmp_path: Path
) -> None:
    """Fluent `mlflow` calls, with no URI in code, reach the server and write to S3."""
    mlflow.set_experiment(f"fluent-{tmp_path.name}")
    with mlflow.start_run() as run:
        mlflow.log_metric("rmse", 1.5)
        mlflow.log_text("fluent", "notes/fluent.txt")
    assert mlflow.get_tracking_uri() == mlflow_client_env["MLFLOW_TRACKING_URI"]
    stored = mlflow.MlflowClient().get_run(run.info.run_id)
    assert stored.data.metrics == {"rmse": 1.5}
    assert stored.info.artifact_uri.startswith("s3://")
