"""What a tracking URI is, how it is shown, and which variables point MLflow's artifact stores at
our endpoints: plain rules, so callers that must start fast (the Dagster code location, the API,
`modelcycle up`) need not import MLflow to ask."""

from __future__ import annotations

import os
import re
from pathlib import Path

from modelcycle.settings import Settings

MLFLOW_CREDENTIALS_FILE = Path("~/.mlflow/credentials")
# MLflow's error codes for a model or alias that is not there (the alias lookup answers either).
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# `scheme://user:password@` in a URI or anywhere in a message; greedy up to the last `@` before
# the host, so a password with an unescaped `@` is masked whole.
_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]+@")


def is_tracking_server(uri: str) -> bool:
    """True for an MLflow tracking server (http or https); false for an embedded store (sqlite,
    a folder), which has no UI address, no /health and keeps its artifacts beside the home."""
    return uri.startswith(("http://", "https://"))


def rest_readable(tracking_uri: str, registry_uri: str | None) -> bool:
    """True when a plain HTTP request reads the same registry MLflow's client would
    (registry/rest.py): a tracking server, no separate registry URI, no auth plugin or
    credentials file that only MLflow's client knows how to use."""
    if not is_tracking_server(tracking_uri) or registry_uri not in (None, tracking_uri):
        return False
    if os.environ.get("MLFLOW_TRACKING_AUTH"):  # a request-auth plugin only MLflow can load
        return False
    return not MLFLOW_CREDENTIALS_FILE.expanduser().exists()


def mask_uri(text: str) -> str:
    """`text` with the credentials of every URI in it replaced by `***`, for messages and logs.

    A tracking URI may carry them (`http://user:token@mlflow.internal`), and MLflow and requests
    repeat the URI in their errors; everything that shows a URI or such an error goes through here.
    """
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def artifact_store_environment(settings: Settings) -> dict[str, str]:
    """The variables MLflow's artifact stores read, derived from our endpoint settings.

    MLflow's S3 store reads `MLFLOW_S3_ENDPOINT_URL`; its GCS store builds a google-cloud-storage
    client, which talks to `STORAGE_EMULATOR_HOST` with anonymous credentials and never asks the
    metadata server. So `MODELCYCLE_GCS_ENDPOINT_URL` drives the lake (gcsfs) and the artifacts
    alike. A tracking server writing `gs://` artifacts itself needs the same variables.
    """
    env: dict[str, str] = {}
    if settings.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.gcs_endpoint_url:
        env["STORAGE_EMULATOR_HOST"] = settings.gcs_endpoint_url.rstrip("/")
    return env


def first_line(error: BaseException) -> str:
    """The error's first line, credentials masked: what a message about an MLflow error shows."""
    text = str(error).strip()
    return mask_uri(text.splitlines()[0]) if text else type(error).__name__
