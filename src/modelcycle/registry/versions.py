"""Registering model versions and moving the `challenger` / `champion` aliases."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import RegistryError
from modelcycle.registry.connection import first_line
from modelcycle.registry.uris import NOT_FOUND_CODES

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    aliases: tuple[str, ...]


def has_alias(client: MlflowClient, name: str, alias: str) -> bool:
    try:
        client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in NOT_FOUND_CODES:
            return False
        raise RegistryError(
            f"registry lookup of {name}@{alias} failed: {first_line(error)}"
        ) from error
    return True


def register_version(
    client: MlflowClient, *, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> RegisteredVersion:
    """A new version of `name`, tagged, as `challenger`; also `champion` when there is none yet."""
    try:
        version = mlflow.register_model(model_uri=model_uri, name=name, tags=tags)
        client.set_registered_model_alias(name, CHALLENGER, version.version)
        aliases = [CHALLENGER]
        if not has_alias(client, name, CHAMPION):
            client.set_registered_model_alias(name, CHAMPION, version.version)
            aliases.append(CHAMPION)
        client.set_tag(run_id, "modelcycle.registered_version", f"{name}/{version.version}")
    except MlflowException as error:
        raise RegistryError(f"registering {name} failed: {first_line(error)}") from error
    return RegisteredVersion(name=name, version=str(version.version), aliases=tuple(aliases))
