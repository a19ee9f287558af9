"""Credentials never shown: a tracking URI with a password in it, in errors, logs and the API.

No trained models are needed here: the API starts (and answers) with nothing to serve.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ApiServer, start_api
from tests.support.cli import run_cli
from tests.support.servers import LOOPBACK, free_port

PASSWORD = "s3cret-pw-71"


def _assert_clean_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.fixture(scope="module")
def dead_registry_url() -> str:
    """A tracking server URL with credentials in it, where nothing listens."""
    return f"http://alice:{PASSWORD}@{LOOPBACK}:{free_port()}"


@pytest.fixture(scope="module")
def keyed_api(
    tmp_path_factory: pytest.TempPathFactory, server_log_dir: Path, dead_registry_url: str
) -> Iterator[ApiServer]:
    """An API whose registry is unreachable: nothing is served, every poll fails."""
    env = {
        "MODELCYCLE_HOME": str(tmp_path_factory.mktemp("access-home")),
        "MODELCYCLE_TRACKING_URI": dead_registry_url,
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
    }
    with start_api(env, server_log_dir) as server:
        yield server


def _last_errors(api: ApiServer) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        errors = [m["last_error"] for m in api.get("/v1/models").json()["models"]]
        if all(errors):
            return errors
        time.sleep(0.2)
    raise AssertionError("the registry poll never reported an error")


def test_credentials_in_the_tracking_uri_are_never_shown(
    keyed_api: ApiServer, dead_registry_url: str, tmp_path: Path
) -> None:
    for error in _last_errors(keyed_api):
        assert PASSWORD not in error
        assert "unreachable" in error
        assert f"http://***@{LOOPBACK}" in error
    assert PASSWORD not in keyed_api.log_path.read_text()
    result = run_cli(
        "models",
        "list",
        env={"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_TRACKING_URI": dead_registry_url},
        timeout=120,
    )
    _assert_clean_error(result, "unreachable", f"http://***@{LOOPBACK}")
    assert PASSWORD not in result.stderr + result.stdout
