"""Training end to end against a real MLflow server (SQLite and PostgreSQL), artifacts on S3."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.cli import invoke_cli
from tests.support.registry import CLASSIFIER, DETECTOR, registry_env
from tests.support.servers import MlflowServer

pytestmark = pytest.mark.slow

START = date(2026, 1, 1)
DAYS = 4


@pytest.fixture(scope="module")
def ingested_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated fleet, ingested into a local lake once for the module."""
    home = tmp_path_factory.mktemp("home")
    spec = FleetSpec(devices=30, sensors=12, days=DAYS, start=START, seed=3)
    simulate_fleet(spec, home / "raw")
    for offset in range(DAYS):
        day = (START + timedelta(days=offset)).isoformat()
        result = invoke_cli("ingest", "--date", day, env={"MODELCYCLE_HOME": str(home)})
        assert result.returncode == 0, result.stderr
    return home


def _cli_json(*args: str, env: dict[str, str]) -> Any:
    result = invoke_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _s3_object_bytes(server: MlflowServer, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3 = boto3.client(
        "s3",
        endpoint_url=server.env["MLFLOW_S3_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="eu-west-1",
    )
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_each_training_registers_a_verified_version_of_both_models(
    ingested_home: Path, mlflow_server: MlflowServer, request: pytest.FixtureRequest
) -> None:
    experiment = f"registry-{request.node.callspec.id}"
    env = registry_env(ingested_home, mlflow_server, experiment)
    last = (START + timedelta(days=DAYS - 1)).isoformat()

    first = _cli_json("train", "--date", last, "--window-days", str(DAYS), env=env)
    assert {v["name"] for v in first} == {f"{experiment}-{CLASSIFIER}", f"{experiment}-{DETECTOR}"}
    assert all(set(v["aliases"]) == {"challenger", "champion"} for v in first)

    versions = _cli_json("models", "list", env=env)
    mine = [v for v in versions if v["name"].startswith(experiment)]
    assert len(mine) == 2
    for version in mine:
        assert {"name", "version", "aliases", "metrics", "params", "created_at", "source"} <= set(
            version
        )
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
            assert 0.0 <= version["metrics"][metric] <= 1.0
        assert version["params"]["window_days"] == str(DAYS)
        tags = version["tags"]
        assert len(tags["modelcycle.data_hash"]) == 64
        assert tags["modelcycle.window_start"] == f"{START.isoformat()}T00:00:00"
        assert version["artifact_uri"].startswith("s3://")
        onnx_bytes = _s3_object_bytes(mlflow_server, version["artifact_uri"] + "/model.onnx")
        assert hashlib.sha256(onnx_bytes).hexdigest() == tags["modelcycle.onnx_sha256"]

    classifier = next(v for v in mine if v["name"].endswith(CLASSIFIER))
    assert classifier["metrics"]["roc_auc"] > 0.8  # the simulator's faults are learnable

    second = _cli_json("train", "--date", last, "--window-days", str(DAYS), env=env)
    assert all(v["version"] == "2" and v["aliases"] == ["challenger"] for v in second)
    shown = _cli_json("models", "show", f"{experiment}-{CLASSIFIER}", "--version", "1", env=env)
    assert shown["aliases"] == ["champion"]
    # Same data, same seed: the same training data hash.
    assert shown["tags"]["modelcycle.data_hash"] == classifier["tags"]["modelcycle.data_hash"]


def test_unknown_model_version_is_a_clear_error(
    ingested_home: Path, mlflow_sqlite_server: MlflowServer
) -> None:
    env = registry_env(ingested_home, mlflow_sqlite_server, "missing")
    result = invoke_cli("models", "show", "no-such-model", env=env)
    assert result.returncode == 3
    assert "no-such-model" in result.stderr
    assert "Traceback" not in result.stderr
