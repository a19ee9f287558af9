"""deploy/compose.yaml: valid against the compose specification's JSON schema (no Docker engine
here), every modelcycle service runs a real `modelcycle` command, health checks and named
volumes throughout, and every secret comes from deploy/.env."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import yaml

from modelcycle.alerting.config import EmailChannel
from modelcycle.alerting.rules_file import parse_rules
from tests.deploy.commands import unknown_modelcycle_command
from tests.deploy.conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
ONE_OFF = {"minio-buckets", "migrate"}  # run once and exit: no health to check


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def schema_errors(document: object) -> list[str]:
    """The compose-spec schema as check-jsonschema ships it (vendored from compose-spec)."""
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
            validator.iter_errors(document)]  # fmt: skip


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_a_mistyped_compose_key_is_refused_by_the_schema() -> None:
    broken = compose()
    broken["services"]["api"]["healthchek"] = broken["services"]["api"].pop("healthcheck")
    assert any("healthchek" in error for error in schema_errors(broken))


def test_the_stack_has_every_service_the_deployment_needs() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "postgres", "minio", "mlflow", "dagster-webserver", "dagster-daemon",
        "dagster-code-server", "api", "prometheus", "mailpit",
    }  # fmt: skip


def test_every_modelcycle_service_runs_a_command_of_the_image_entry_point() -> None:
    image = compose()["x-modelcycle-image"]["image"]
    ours = {n: s for n, s in compose()["services"].items() if s.get("image") == image}
    assert len(ours) == 6
    for name, service in ours.items():
        assert unknown_modelcycle_command(service["command"]) is None, name


def test_long_running_services_have_health_checks_and_data_is_in_named_volumes() -> None:
    document = compose()
    for name, service in document["services"].items():
        if name not in ONE_OFF:
            assert service["healthcheck"]["test"][0] == "CMD", name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in document["volumes"], (name, volume)
    assert set(document["volumes"]) >= {"postgres-data", "minio-data", "prometheus-data"}


def test_mlflow_uses_postgres_minio_and_basic_auth() -> None:
    mlflow = compose()["services"]["mlflow"]
    assert mlflow["command"][mlflow["command"].index("--app-name") + 1] == "basic-auth"
    assert "s3://" in mlflow["command"][mlflow["command"].index("--artifacts-destination") + 1]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")


def test_every_secret_comes_from_the_env_file_and_the_example_lists_them_all() -> None:
    text = COMPOSE.read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (ROOT / "deploy" / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert variables <= listed, variables - listed
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert (
        not (ROOT / "deploy" / ".env").exists()
        or "deploy/.env" in (ROOT / ".gitignore").read_text()
    )


def test_alerts_go_to_the_mail_catcher() -> None:
    path = ROOT / "deploy" / "compose" / "alert-rules.yaml"
    config = parse_rules(path.read_text(), str(path))
    channel = config.channels["mail-catcher"]
    assert isinstance(channel, EmailChannel)
    assert (channel.type, channel.host, channel.port) == ("email", "mailpit", 1025)
    assert "mailpit" in compose()["services"]
