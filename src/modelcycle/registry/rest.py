"""`name@alias` read from a tracking server's REST API, without importing MLflow.

The API asks the registry which version an alias names every few seconds. Asked through
`MlflowClient`, the first poll imports MLflow and, under it, pandas and pyarrow: about 190 MiB of
the API's resident memory (docs/benchmarks.md) for one GET. A tracking server answers the same
question at `GET /api/2.0/mlflow/registered-models/alias`, so a served registry is read with
`requests`, with the credentials and TLS settings MLflow's own client takes from the environment.
What only MLflow knows how to do (an auth plugin, its credentials file, a separate registry URI)
still goes through `MlflowClient` (`uris.rest_readable`), and so do downloads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests

from modelcycle.errors import DataNotFoundError, RegistryError
from modelcycle.registry.uris import NOT_FOUND_CODES, mask_uri

ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"


@dataclass(frozen=True)
class AliasedVersion:
    """What the registry says of the version an alias names."""

    version: str
    run_id: str
    tags: dict[str, str]
    creation_timestamp_ms: int


def _credentials() -> dict[str, Any]:
    """Headers, basic auth and TLS options, from the variables MLflow's client reads."""
    options: dict[str, Any] = {}
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        options["headers"] = {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        options["auth"] = (user, password)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        options["verify"] = False
    elif server_cert := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        options["verify"] = server_cert
    if client_cert := os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        options["cert"] = client_cert
    return options


def server_get(
    uri: str,
    path: str,
    *,
    timeout: float | tuple[float, float],
    params: dict[str, str] | None = None,
) -> requests.Response:
    """GET `path` on a tracking server, asked once; unreachable or refusing the credentials is a
    one-line RegistryError with the URI's credentials masked."""
    shown = mask_uri(uri)
    try:
        response = requests.get(
            uri.rstrip("/") + path, params=params, timeout=timeout, **_credentials()
        )
    except requests.RequestException as error:
        raise RegistryError(
            f"MLflow tracking server at {shown} is unreachable: {type(error).__name__}"
        ) from error
    if response.status_code in (401, 403):
        raise RegistryError(f"MLflow tracking server at {shown} refused the credentials")
    return response


def version_by_alias(
    tracking_uri: str, name: str, alias: str, *, timeout: tuple[float, float]
) -> AliasedVersion:
    """The version `name@alias` names. DataNotFoundError when none does; RegistryError, one
    line with credentials masked, when the server cannot be asked or refuses. `timeout`:
    (connect, read) seconds, asked once: a poll fails fast and the next one asks again."""
    shown = mask_uri(tracking_uri)
    response = server_get(
        tracking_uri, ALIAS_PATH, params={"name": name, "alias": alias}, timeout=timeout
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryError(
            f"registry lookup of {name}@{alias} failed: HTTP {response.status_code} from {shown} "
            "is not an MLflow answer"
        )
    if response.status_code != 200:
        if body.get("error_code") in NOT_FOUND_CODES:
            raise DataNotFoundError(f"no version of {name} has the alias {alias!r}")
        message = str(body.get("message") or f"HTTP {response.status_code}").strip()
        raise RegistryError(
            f"registry lookup of {name}@{alias} failed: {mask_uri(message.splitlines()[0])}"
        )
    try:
        found = body["model_version"]
        return AliasedVersion(
            version=str(found["version"]),
            run_id=str(found.get("run_id") or ""),
            tags={tag["key"]: tag["value"] for tag in found.get("tags", [])},
            creation_timestamp_ms=int(found.get("creation_timestamp") or 0),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RegistryError(
            f"registry lookup of {name}@{alias} failed: {shown} answered without a version "
            f"({type(error).__name__}: {error})"
        ) from error
