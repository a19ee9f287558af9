"""Where served versions come from: the MLflow registry, asked by alias.

MLflow is imported on first use, not at start: importing it takes seconds, and an API with a
cached verified model should be answering by then.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from modelcycle.errors import DataNotFoundError, ModelValidationError, RegistryError
from modelcycle.registry.contract import ONNX_ARTIFACT, SHA256_TAG
from modelcycle.serving.model import VersionRecord
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
PREFLIGHT_TIMEOUT_SECONDS = 3.0


class VersionSource(Protocol):
    def resolve(self, name: str, alias: str) -> VersionRecord: ...

    def fetch(self, record: VersionRecord) -> bytes: ...


class RegistrySource:
    """Resolves `name@alias` and downloads the version's ONNX artifact."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        self._client: MlflowClient | None = None

    def _connect(self) -> MlflowClient:
        from modelcycle.registry.connection import check_server, registry_client

        # MLflow's client retries an unreachable server for a long time; a poll must fail fast.
        if self.tracking_uri.startswith(("http://", "https://")):
            check_server(self.tracking_uri, timeout=PREFLIGHT_TIMEOUT_SECONDS)
        if self._client is None:
            self._client, self.tracking_uri = registry_client(self.settings)
        return self._client

    def resolve(self, name: str, alias: str) -> VersionRecord:
        from mlflow.exceptions import MlflowException

        from modelcycle.registry.connection import first_line

        client = self._connect()
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if error.error_code in _MISSING:
                raise DataNotFoundError(f"no version of {name} has the alias {alias!r}") from error
            raise RegistryError(
                f"registry lookup of {name}@{alias} failed: {first_line(error)}"
            ) from error
        sha256 = (version.tags or {}).get(SHA256_TAG)
        if not sha256:
            raise ModelValidationError(
                f"{name} v{version.version} has no recorded {SHA256_TAG}; refusing to serve it"
            )
        return VersionRecord(
            name=name,
            version=str(version.version),
            alias=alias,
            run_id=version.run_id or "",
            sha256=sha256,
            trained_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
        )

    def fetch(self, record: VersionRecord) -> bytes:
        import mlflow.artifacts

        from modelcycle.registry.connection import first_line

        client = self._connect()
        try:
            location = client.get_model_version_download_uri(record.name, record.version)
            with tempfile.TemporaryDirectory(prefix="modelcycle-serving-") as scratch:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location.rstrip('/')}/{ONNX_ARTIFACT}",
                    dst_path=scratch,
                    tracking_uri=self.tracking_uri,
                )
                return Path(local).read_bytes()
        except Exception as error:  # MLflow, boto and fsspec each raise their own error types
            raise RegistryError(
                f"downloading {record.name} v{record.version} failed: {first_line(error)}"
            ) from error
