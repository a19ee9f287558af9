"""Who may reach what: open mode only on loopback unless asked for, secrets that must be real,
credentials never shown, and /metrics behind a key when one is set.

No trained models are needed here: the API starts (and answers) with nothing to serve. Commands
refused before they start anything run in the test's process (`invoke_cli`); those that go on to
start servers run as child processes.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import API_KEY, ApiServer, start_api
from tests.support.cli import invoke_cli, run_cli
from tests.support.servers import LOOPBACK, free_port

# TEST-NET-1 (RFC 5737): never a local address, so a server asked to listen there fails to bind
# instead of listening on a real interface.
UNREACHABLE_HOST = "192.0.2.1"
PASSWORD = "s3cret-pw-71"
METRICS_KEY = "metrics-key-5d0c"


def _open_env(home: Path, **extra: str) -> dict[str, str]:
    """No API keys: the API would be open. The registry is a closed port, so a server that did
    start gives up on it at once instead of importing MLflow for the embedded store."""
    return {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_API_KEYS": "",
        "MODELCYCLE_TRACKING_URI": f"http://{LOOPBACK}:{free_port()}",
        **extra,
    }


def _assert_clean_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", UNREACHABLE_HOST])
def test_serve_refuses_an_open_api_on_a_non_loopback_address(tmp_path: Path, host: str) -> None:
    result = invoke_cli(
        "serve", "--host", host, "--port", str(free_port()), env=_open_env(tmp_path)
    )
    _assert_clean_error(result, "MODELCYCLE_API_KEYS", "--allow-open", host)


@pytest.mark.slow  # the API starts, and fails to listen, in a process of its own
@pytest.mark.parametrize(
    ("flag", "extra"),
    [(["--allow-open"], {}), ([], {"MODELCYCLE_SERVING_ALLOW_OPEN": "true"})],
)
def test_serve_open_on_a_non_loopback_address_when_asked_warns_loudly(
    tmp_path: Path, flag: list[str], extra: dict[str, str]
) -> None:
    result = run_cli(
        "serve",
        "--host",
        UNREACHABLE_HOST,
        "--port",
        str(free_port()),
        *flag,
        env=_open_env(tmp_path, **extra),
        timeout=120,
    )
    # It went on to listen (and could not: that address is not this machine's).
    assert result.returncode != 0
    assert "cannot assign requested address" in result.stderr.lower(), result.stderr
    assert result.stderr.count("without API keys") >= 2, result.stderr  # printed and logged
    assert f"anyone who can reach {UNREACHABLE_HOST}" in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", UNREACHABLE_HOST])
def test_up_refuses_a_non_loopback_address_without_allow_open(tmp_path: Path, host: str) -> None:
    result = invoke_cli("up", "--host", host, env=_open_env(tmp_path))
    _assert_clean_error(result, "MLflow", "Dagster UI", "champion", "--allow-open")
    assert not (tmp_path / "logs").exists()  # nothing was started


@pytest.mark.slow
def test_up_on_a_non_loopback_address_with_allow_open_warns_loudly(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    result = run_cli(
        "up",
        "--host",
        UNREACHABLE_HOST,
        "--allow-open",
        *("--mlflow-port", ports[0], "--dagster-port", ports[1], "--api-port", ports[2]),
        # the embedded MLflow store, so `up` starts (and exposes) an MLflow server
        env={"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_API_KEYS": ""},
        timeout=300,
    )
    assert result.returncode != 0  # the first service cannot listen on that address
    assert "MLflow exited" in result.stderr, result.stderr
    for exposed in ("MLflow", "Dagster UI", "prediction API"):
        assert f"{exposed} on {UNREACHABLE_HOST}" in result.stderr, result.stderr


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_webhook_secret_is_refused_at_start(tmp_path: Path, secret: str) -> None:
    result = invoke_cli(
        "serve",
        "--port",
        str(free_port()),
        env={"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_WEBHOOK_SECRET": secret},
    )
    _assert_clean_error(result, "MODELCYCLE_WEBHOOK_SECRET", "empty")


@pytest.fixture(scope="module")
def dead_registry_url() -> str:
    """A tracking server URL with credentials in it, where nothing listens."""
    return f"http://alice:{PASSWORD}@{LOOPBACK}:{free_port()}"


@pytest.fixture(scope="module")
def keyed_api(
    tmp_path_factory: pytest.TempPathFactory, server_log_dir: Path, dead_registry_url: str
) -> Iterator[ApiServer]:
    """An API whose registry is unreachable (nothing served) and whose /metrics needs a key."""
    env = {
        "MODELCYCLE_HOME": str(tmp_path_factory.mktemp("access-home")),
        "MODELCYCLE_TRACKING_URI": dead_registry_url,
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
        "MODELCYCLE_METRICS_KEY": METRICS_KEY,
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
    result = invoke_cli(
        "models",
        "list",
        env={"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_TRACKING_URI": dead_registry_url},
    )
    _assert_clean_error(result, "unreachable", f"http://***@{LOOPBACK}")
    assert PASSWORD not in result.stderr + result.stdout


def test_metrics_need_the_metrics_key_when_one_is_set(keyed_api: ApiServer) -> None:
    metrics = f"{keyed_api.url}/metrics"
    for headers in ({}, {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": "Bearer x"}):
        answer = requests.get(metrics, headers=headers, timeout=5)
        assert answer.status_code == 401
        assert "MODELCYCLE_METRICS_KEY" in answer.json()["detail"]
    answer = requests.get(metrics, headers={"Authorization": f"Bearer {METRICS_KEY}"}, timeout=5)
    assert answer.status_code == 200
    assert "modelcycle_requests_total" in answer.text
    assert requests.get(f"{keyed_api.url}/healthz", timeout=5).status_code == 200
    assert METRICS_KEY not in keyed_api.log_path.read_text()
