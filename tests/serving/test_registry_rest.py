"""The alias poll reads a served registry over MLflow's REST API, without importing MLflow.

Against the session's real `mlflow server` (and a real HTTP receiver for a server that refuses
the credentials): the same answer as MLflow's client, the same errors, and a process that polls
the registry never imports MLflow (or pandas and pyarrow under it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelcycle.errors import DataNotFoundError, RegistryError
from modelcycle.registry.contract import SHA256_TAG
from modelcycle.registry.loading import RegistrySource
from modelcycle.registry.uris import rest_readable
from modelcycle.settings import Settings
from tests.serving.conftest import TrainedRegistry
from tests.support.registry import server_client
from tests.support.servers import LOOPBACK


def _settings(registry: TrainedRegistry, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_the_alias_is_read_over_rest_as_mlflow_reads_it(
    trained_registry: TrainedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(trained_registry, monkeypatch)
    source = RegistrySource(settings)
    assert rest_readable(source.tracking_uri, settings.registry_uri)
    client = server_client(trained_registry.server.tracking_uri)
    for name in (trained_registry.classifier, trained_registry.detector):
        for alias in ("champion", "challenger"):
            record = source.resolve(name, alias)
            expected = client.get_model_version_by_alias(name, alias)
            assert (record.version, record.run_id, record.sha256, record.alias) == (
                expected.version,
                expected.run_id,
                expected.tags[SHA256_TAG],
                alias,
            )
    with pytest.raises(DataNotFoundError, match="has the alias 'nobody'"):
        source.resolve(trained_registry.classifier, "nobody")
    with pytest.raises(DataNotFoundError):
        source.resolve(f"{trained_registry.prefix}-no-such-model", "champion")


def test_polling_a_served_registry_never_imports_mlflow(
    trained_registry: TrainedRegistry, tmp_path: Path
) -> None:
    """What the API's first poll does, in a fresh process: MLflow, pandas and pyarrow would be
    ~190 MiB of its memory (docs/benchmarks.md)."""
    probe = (
        "import sys; from modelcycle.registry.loading import RegistrySource; "
        "from modelcycle.settings import Settings; "
        f"record = RegistrySource(Settings()).resolve({trained_registry.classifier!r}, "
        "'champion'); "
        "print(record.version, sorted(m for m in ('mlflow', 'pandas', 'pyarrow') "
        "if m in sys.modules))"
    )
    env = {**trained_registry.env, "HOME": str(tmp_path)}  # no ~/.mlflow/credentials here
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1)[1].strip() == "[]"


AUTHORIZATIONS: list[str] = []  # what the refusing server was sent


class _Refusing(BaseHTTPRequestHandler):
    """A tracking server that refuses every request."""

    def do_GET(self) -> None:
        AUTHORIZATIONS.append(self.headers.get("Authorization", ""))
        body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "no"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_token_is_sent_and_a_refusal_is_one_line_without_the_credentials(
    refusing_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELCYCLE_HOME", str(tmp_path))
    monkeypatch.setenv("MODELCYCLE_TRACKING_URI", refusing_server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken-s3cret")
    with pytest.raises(RegistryError, match=r"refused the credentials$"):
        RegistrySource(Settings()).resolve("m", "champion")
    assert AUTHORIZATIONS[-1] == "Bearer t0ken-s3cret"

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MODELCYCLE_TRACKING_URI", refusing_server.replace("://", "://u:s3cret@"))
    with pytest.raises(RegistryError) as refused:
        RegistrySource(Settings()).resolve("m", "champion")
    masked = refusing_server.replace("://", "://***@")
    assert str(refused.value) == f"MLflow tracking server at {masked} refused the credentials"
    assert AUTHORIZATIONS[-1].startswith("Basic ")  # the URI's user and password, as MLflow's
