"""What the registry holds, as plain records for `models list` and `models show`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import DataNotFoundError, RegistryError
from modelcycle.registry.ages import ModelAge, trained_at_of
from modelcycle.registry.connection import first_line
from modelcycle.registry.contract import TRAINED_AT_TAG
from modelcycle.registry.versions import CHAMPION


@dataclass(frozen=True)
class ModelVersionRecord:
    name: str
    version: str
    aliases: list[str]
    created_at: str
    source: str
    artifact_uri: str
    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _artifact_uri(client: MlflowClient, version: ModelVersion) -> str:
    """Where the version's files are in object storage (not the models:/ indirection)."""
    model_id = getattr(version, "model_id", None)
    if model_id:
        return str(client.get_logged_model(model_id).artifact_location)
    return str(client.get_model_version_download_uri(version.name, version.version))


def _record(
    client: MlflowClient, version: ModelVersion, aliases: dict[str, str]
) -> ModelVersionRecord:
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    if version.run_id:
        run = client.get_run(version.run_id)
        metrics = dict(run.data.metrics)
        params = dict(run.data.params)
    created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
    return ModelVersionRecord(
        name=version.name,
        version=str(version.version),
        aliases=sorted(a for a, v in aliases.items() if str(v) == str(version.version)),
        created_at=created.isoformat(timespec="seconds"),
        source=str(version.source),
        artifact_uri=_artifact_uri(client, version),
        run_id=str(version.run_id or ""),
        status=str(version.status),
        metrics=metrics,
        params=params,
        tags=dict(version.tags or {}),
    )


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in (client.get_registered_model(name).aliases or {}).items()}


def list_versions(
    client: MlflowClient, names: list[str] | None = None, *, newest: int | None = None
) -> list[ModelVersionRecord]:
    """Every version (or the `newest` ones) of the given (default: all) registered models, newest
    first per model; each version costs two reads of its run and files, so a page asks for few."""
    try:
        if names is None:
            names = sorted(model.name for model in client.search_registered_models())
        records = []
        for name in names:
            versions = client.search_model_versions(f"name = '{name}'")
            ordered = sorted(versions, key=lambda v: int(v.version), reverse=True)[:newest]
            aliases = _aliases(client, name)
            records += [_record(client, v, aliases) for v in ordered]
    except MlflowException as error:
        raise RegistryError(f"listing models failed: {first_line(error)}") from error
    return records


def show_version(client: MlflowClient, name: str, version: str | None) -> ModelVersionRecord:
    """One version (default: the newest) of a registered model."""
    try:
        if version is None:
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise DataNotFoundError(f"no registered model named {name!r}")
            chosen = max(versions, key=lambda v: int(v.version))
        else:
            chosen = client.get_model_version(name, version)
        return _record(client, chosen, _aliases(client, name))
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise DataNotFoundError(f"no version {version} of model {name!r}") from error
        raise RegistryError(f"reading {name} failed: {first_line(error)}") from error


def trained_at(version: ModelVersion) -> datetime:
    """When a version was trained: its tag, else its registration (versions before the tag)."""
    return trained_at_of((version.tags or {}).get(TRAINED_AT_TAG), version.creation_timestamp)


def model_ages(client: MlflowClient, names: list[str]) -> dict[str, ModelAge]:
    """Each model's champion and newest version with their training times (absent: no version)."""
    ages: dict[str, ModelAge] = {}
    for name in names:
        try:
            versions = client.search_model_versions(f"name='{name}'")
            aliases = _aliases(client, name) if versions else {}
        except MlflowException as error:
            reason = first_line(error)
            raise RegistryError(f"listing versions of {name} failed: {reason}") from error
        if not versions:
            continue
        latest = max(versions, key=lambda v: int(v.version))
        serving = [v for v in versions if str(v.version) == aliases.get(CHAMPION)]
        ages[name] = ModelAge(
            champion=(str(serving[0].version), trained_at(serving[0])) if serving else None,
            newest=(str(latest.version), trained_at(latest)),
        )
    return ages
