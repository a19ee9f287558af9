"""Promotion dev → prod: two real MLflow servers (dev on SQLite, prod on PostgreSQL, each with its
own bucket on the S3 endpoint), a dev store on SQLite and a prod store on PostgreSQL. A version
trained in dev and approved there arrives in prod with its lineage and waits for a prod approver.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow.artifacts
import pytest
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import Identity, Role
from modelcycle.access.keys import create_api_key
from modelcycle.access.users import add_user
from modelcycle.registry.loading import RegistrySource, load_verified_model
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.serving.app import build_services, create_app
from modelcycle.settings import Settings
from modelcycle.store import Store
from tests.access.conftest import migrated_store
from tests.release.conftest import GATES_PASSED
from tests.release.test_api import _call
from tests.serving.conftest import DAYS, START, fleet_home
from tests.serving.test_metrics_accuracy import NoRegistry
from tests.support.cli import invoke_cli
from tests.support.registry import PrefixedModels, registry_env, server_client
from tests.support.servers import MlflowServer, sqlalchemy_postgres_url, unique_name

__all__ = ["fleet_home"]  # the ingested fleet dev trains on

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class DevVersion(PrefixedModels):
    """Both models trained once in dev: version 1 of each, its champion."""

    prefix: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def dev_trained(fleet_home: Path, mlflow_sqlite_server: MlflowServer) -> DevVersion:
    prefix = unique_name("promote")
    env = registry_env(fleet_home, mlflow_sqlite_server, prefix)
    last = (START + timedelta(days=DAYS - 1)).isoformat()
    result = invoke_cli(
        "train", "--date", last, "--window-days", str(DAYS), "--seed", "42", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    return DevVersion(prefix=prefix, env=env)


@dataclass(frozen=True)
class Environments:
    dev_env: dict[str, str]
    prod_env: dict[str, str]
    dev: Settings
    prod: Settings
    dev_store: Store
    prod_store: Store
    dev_client: MlflowClient
    prod_client: MlflowClient
    dev_people: dict[str, Identity]
    prod_people: dict[str, Identity]


def _people(store: Store, roles: dict[str, Role]) -> dict[str, Identity]:
    with store.session() as session:
        return {name: add_user(session=session, name=name, role=r) for name, r in roles.items()}


@pytest.fixture
def envs(
    tmp_path: Path,
    dev_trained: DevVersion,
    mlflow_sqlite_server: MlflowServer,
    mlflow_postgres_server: MlflowServer,
    postgres_url: str,
    s3_environment: dict[str, str],
) -> Iterator[Environments]:
    """dev: this process's variables; prod: `profiles/prod.env` beside them, as an operator
    would write it (its own MLflow server, experiment and store). This process reaches both
    buckets through the one S3 endpoint, as a promoting process does."""
    prod_db = sqlalchemy_postgres_url(postgres_url)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "prod.env").write_text(
        f"MODELCYCLE_TRACKING_URI={mlflow_postgres_server.tracking_uri}\n"
        f"MODELCYCLE_DATABASE_URL={prod_db}\n"
        f"MODELCYCLE_EXPERIMENT_NAME={dev_trained.prefix}-prod\n"
    )
    dev_env = {
        **dev_trained.env,
        "MODELCYCLE_ENVIRONMENT": "dev",
        "MODELCYCLE_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "MODELCYCLE_PROFILES_DIR": str(profiles),
        "MODELCYCLE_LOG_LEVEL": "WARNING",
    }
    prod_env = {
        **dev_trained.env,
        "MODELCYCLE_HOME": str(tmp_path / "prod-home"),
        "MODELCYCLE_ENVIRONMENT": "prod",
        "MODELCYCLE_TRACKING_URI": mlflow_postgres_server.tracking_uri,
        "MODELCYCLE_DATABASE_URL": prod_db,
        "MODELCYCLE_LOG_LEVEL": "WARNING",
    }
    dev = Settings(
        home=tmp_path,
        environment="dev",
        database_url=dev_env["MODELCYCLE_DATABASE_URL"],
        tracking_uri=mlflow_sqlite_server.tracking_uri,
        profiles_dir=profiles,
        experiment_name=dev_trained.prefix,
        classifier_model_name=dev_trained.classifier,
        anomaly_model_name=dev_trained.detector,
    )
    prod = Settings(
        home=tmp_path / "prod-home",
        environment="prod",
        database_url=prod_db,
        tracking_uri=mlflow_postgres_server.tracking_uri,
    )
    dev_store, prod_store = migrated_store(dev), migrated_store(prod)
    try:
        yield Environments(
            dev_env=dev_env,
            prod_env=prod_env,
            dev=dev,
            prod=prod,
            dev_store=dev_store,
            prod_store=prod_store,
            dev_client=server_client(mlflow_sqlite_server.tracking_uri),
            prod_client=server_client(mlflow_postgres_server.tracking_uri),
            dev_people=_people(
                dev_store, {"otto": Role.OPERATOR, "alice": Role.APPROVER, "vera": Role.VIEWER}
            ),
            prod_people=_people(prod_store, {"otto": Role.APPROVER, "pat": Role.APPROVER}),
        )
    finally:
        dev_store.close()
        prod_store.close()


def _dev_releases(envs: Environments) -> Releases:
    return Releases(
        store=envs.dev_store,
        registry=ReleaseRegistry(envs.dev_client),
        environment="dev",
        auto_approve=False,
    )


def _refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    for word in words:
        assert word in line, line


def _sha256_of_version(client: MlflowClient, tracking_uri: str, model: str, version: str) -> str:
    location = client.get_model_version_download_uri(model, version)
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/model.onnx",
            dst_path=scratch,
            tracking_uri=tracking_uri,
        )
        return hashlib.sha256(Path(local).read_bytes()).hexdigest()


def test_promotion_carries_lineage_and_waits_for_a_prod_approver(
    envs: Environments, dev_trained: DevVersion
) -> None:
    model = dev_trained.classifier
    promote = ("release", "promote", model, "1", "--to", "prod", "--as", "otto")

    _refused(invoke_cli(*promote, env=envs.dev_env), 10, "no release request in dev")
    dev_releases = _dev_releases(envs)
    request = dev_releases.open(
        model=model, version="1", requested_by=envs.dev_people["otto"], gates=GATES_PASSED
    )
    _refused(invoke_cli(*promote, env=envs.dev_env), 10, "pending in dev", "approved")
    _refused(
        invoke_cli(
            "release", "promote", model, "99", "--to", "prod", "--as", "otto", env=envs.dev_env
        ),
        3,
        "no version 99",
    )
    _refused(
        invoke_cli(
            "release", "promote", model, "1", "--to", "dev", "--as", "otto", env=envs.dev_env
        ),
        2,
        "another environment",
    )
    dev_releases.approve(request.id, actor=envs.dev_people["alice"], comment="fine in dev")

    done = invoke_cli(*promote, "--comment", "release train 12", "--json", env=envs.dev_env)
    assert done.returncode == 0, done.stderr
    promoted = json.loads(done.stdout)
    version = promoted["to"]["version"]
    assert promoted["created"] and promoted["request"]["state"] == "pending"

    dev_version = envs.dev_client.get_model_version(model, "1")
    prod_version = envs.prod_client.get_model_version(model, version)
    tags = prod_version.tags
    assert tags["modelcycle.promoted_from"].endswith(f"#/models/{model}/versions/1")
    assert tags["modelcycle.promotion.source_run_id"] == dev_version.run_id
    assert tags["modelcycle.promotion.data_hash"] == dev_version.tags["modelcycle.data_hash"]
    assert tags["modelcycle.promotion.data_window"] == (
        f"{dev_version.tags['modelcycle.window_start']}.."
        f"{dev_version.tags['modelcycle.window_end']}"
    )
    assert tags["modelcycle.promotion.source_approved_by"] == "alice"
    assert tags["modelcycle.promotion.source_request_id"] == str(request.id)
    assert {g["name"] for g in json.loads(tags["modelcycle.promotion.gates"])} == {
        "metric",
        "onnx_parity",
    }
    assert tags["modelcycle.onnx_sha256"] == dev_version.tags["modelcycle.onnx_sha256"]
    assert _sha256_of_version(
        envs.prod_client, envs.prod.resolved_tracking_uri, model, version
    ) == _sha256_of_version(envs.dev_client, envs.dev.resolved_tracking_uri, model, "1")
    aliases = envs.prod_client.get_registered_model(model).aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"challenger": version}

    shown = invoke_cli(
        "release", "show", str(promoted["request"]["id"]), "--json", env=envs.prod_env
    )
    prod_request = json.loads(shown.stdout)
    assert prod_request["requested_by"] == "otto" and prod_request["environment"] == "prod"
    assert [g["name"] for g in prod_request["gate_results"]] == [
        "metric",
        "onnx_parity",
        "promotion",
    ]
    assert prod_request["lineage"]["source_approved_by"] == "alice"
    (opened,) = prod_request["decisions"]
    assert opened["action"] == "open" and "promoted from dev" in opened["comment"]
    assert "release train 12" in opened["comment"]

    again = invoke_cli(*promote, env=envs.dev_env)
    assert again.returncode == 0 and "already promoted" in again.stdout
    assert len(envs.prod_client.search_model_versions(f"name = '{model}'")) == 1

    approve = ("release", "approve", str(promoted["request"]["id"]))
    _refused(invoke_cli(*approve, "--as", "otto", env=envs.prod_env), 9, "otto requested")
    decided = invoke_cli(*approve, "--as", "pat", env=envs.prod_env)
    assert decided.returncode == 0, decided.stderr
    assert str(envs.prod_client.get_registered_model(model).aliases["champion"]) == version

    source = RegistrySource(envs.prod)
    record = source.resolve(model, "champion")
    served = load_verified_model(
        record, source.fetch(record), source="registry", now=datetime.now(UTC)
    )
    assert served.record.version == version and served.n_features > 0


def test_promotion_over_http_needs_an_operator_and_a_dev_approval(
    envs: Environments, dev_trained: DevVersion
) -> None:
    model = dev_trained.detector
    trained = envs.dev_client.get_model_version(model, "1")
    retrained = envs.dev_client.create_model_version(  # the same artifact as a second version
        model,
        envs.dev_client.get_model_version_download_uri(model, "1"),
        run_id=trained.run_id,
        tags=trained.tags,
    )
    with envs.dev_store.session() as session:
        keys = {name: create_api_key(session=session, user=name) for name in envs.dev_people}
    app = create_app(envs.dev, build_services(envs.dev, source=NoRegistry()))
    body = {"model": model, "version": "1", "to": "prod"}

    viewer = _call(app, "POST", "/v1/releases/promote", keys["vera"], body)
    assert viewer.status_code == 403 and "operator" in viewer.json()["detail"]
    unapproved = _call(app, "POST", "/v1/releases/promote", keys["otto"], body)
    assert unapproved.status_code == 409 and "approved" in unapproved.json()["detail"]
    unknown = _call(app, "POST", "/v1/releases/promote", keys["otto"], {**body, "version": "99"})
    assert unknown.status_code == 404
    same = _call(app, "POST", "/v1/releases/promote", keys["otto"], {**body, "to": "dev"})
    assert same.status_code == 422 and "another environment" in same.json()["detail"]

    dev_releases = _dev_releases(envs)
    otto, alice = envs.dev_people["otto"], envs.dev_people["alice"]
    second = dev_releases.open(
        model=model, version=str(retrained.version), requested_by=otto, gates=GATES_PASSED
    )
    dev_releases.reject(second.id, actor=alice, comment="drifts")
    rejected = _call(
        app, "POST", "/v1/releases/promote", keys["otto"], {**body, "version": second.version}
    )
    assert rejected.status_code == 409 and "rejected in dev" in rejected.json()["detail"]
    assert not envs.prod_client.search_registered_models(f"name = '{model}'")

    first = dev_releases.open(model=model, version="1", requested_by=otto, gates=GATES_PASSED)
    dev_releases.approve(first.id, actor=alice)
    promoted = _call(app, "POST", "/v1/releases/promote", keys["otto"], body)
    assert promoted.status_code == 200, promoted.text
    answer = promoted.json()
    assert answer["created"] and answer["request"]["state"] == "pending"
    assert answer["request"]["lineage"]["source_request_id"] == first.id
    again = _call(app, "POST", "/v1/releases/promote", keys["otto"], body).json()
    assert not again["created"] and again["request"]["id"] == answer["request"]["id"]
