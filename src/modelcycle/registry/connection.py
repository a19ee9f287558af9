"""Connecting to MLflow: embedded SQLite by default, a tracking server in production.

MLflow retries an unreachable server for minutes by default; we ask once, briefly, so a wrong URL
is a one-line error within seconds instead of a hang.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelcycle.errors import RegistryError
from modelcycle.observability import route_mlflow_output
from modelcycle.registry.rest import server_get
from modelcycle.registry.uris import artifact_store_environment, is_tracking_server
from modelcycle.registry.uris import first_line as first_line  # re-exported, as it always was
from modelcycle.registry.uris import mask_uri as mask_uri  # re-exported: callers show URIs
from modelcycle.settings import Settings

HEALTH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Tracking:
    """A connected MLflow: the client, and the experiment runs are logged to."""

    client: MlflowClient
    tracking_uri: str
    experiment_id: str


def check_server(uri: str, *, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """A quick /health request, so an unreachable server is an error in seconds."""
    response = server_get(uri, "/health", timeout=timeout)
    if response.status_code != 200:
        raise RegistryError(
            f"MLflow tracking server at {mask_uri(uri)} is not healthy "
            f"(HTTP {response.status_code})"
        )


def _prepare_environment(settings: Settings) -> None:
    """MLflow reads these from the process environment; we derive them from our settings."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    route_mlflow_output()
    for name, value in artifact_store_environment(settings).items():
        os.environ.setdefault(name, value)


def registry_client(settings: Settings) -> tuple[MlflowClient, str]:
    """A registry client for readers (the API): no experiment is created, no server is asked."""
    uri = settings.resolved_tracking_uri
    _prepare_environment(settings)
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.registry_uri or uri)
    return client, uri


def connect_tracking(settings: Settings) -> Tracking:
    """Point MLflow at the configured tracking URI and make sure the experiment exists."""
    uri = settings.resolved_tracking_uri
    _prepare_environment(settings)
    if is_tracking_server(uri):
        check_server(uri)
    if uri.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    registry_uri = settings.registry_uri or uri
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=registry_uri)
    try:
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is None:
            artifact_location = settings.artifact_url
            if artifact_location is None and not is_tracking_server(uri):
                artifact_location = settings.resolved_artifact_url
            experiment_id = client.create_experiment(
                settings.experiment_name, artifact_location=artifact_location
            )
        else:
            experiment_id = experiment.experiment_id
    except MlflowException as error:
        raise RegistryError(f"MLflow at {mask_uri(uri)} failed: {first_line(error)}") from error
    return Tracking(client=client, tracking_uri=uri, experiment_id=experiment_id)
