"""Nothing fails silently: a broken serving cache neither stops the API nor its registry poll, and
a shutdown flushes the prediction log. Real uvicorn, real MLflow, real filesystem failures (the
tests run as root, where permissions stop nothing: a regular file where a folder should be, and a
folder where a file should be)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import TrainedRegistry
from tests.support.api import ApiServer, start_api
from tests.support.registry import server_client
from tests.support.servers import unique_name

pytestmark = pytest.mark.slow

WAIT_SECONDS = 30.0


@pytest.fixture
def client(trained_registry: TrainedRegistry) -> Iterator[MlflowClient]:
    """A registry client; every test leaves version 1 as the champion, as it found it."""
    client = server_client(trained_registry.server.tracking_uri)
    yield client
    for name in (trained_registry.classifier, trained_registry.detector):
        client.set_registered_model_alias(name, "champion", "1")


def served(api: ApiServer, name: str) -> dict[str, Any]:
    models: list[dict[str, Any]] = api.get("/v1/models").json()["models"]
    return next(model for model in models if model["name"] == name)


def task(api: ApiServer, name: str) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = api.get("/v1/models").json()["tasks"]
    return next(entry for entry in tasks if entry["name"] == name)


def metric(api: ApiServer, name: str, **labels: str) -> float | None:
    text = requests.get(f"{api.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def log_events(api: ApiServer, event: str) -> list[dict[str, Any]]:
    """The API's JSON log lines whose `event` is `event`."""
    lines = api.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == event]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS:.0f} s: {what}")
        time.sleep(0.1)


def test_an_unwritable_cache_folder_neither_stops_serving_nor_the_registry_poll(
    api_env: dict[str, str],
    trained_registry: TrainedRegistry,
    client: MlflowClient,
    server_log_dir: Path,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("MODELCYCLE_SERVING_CACHE_DIR points below this regular file")
    env = {**api_env, "MODELCYCLE_SERVING_CACHE_DIR": str(blocker / "cache")}
    name = trained_registry.classifier
    with start_api(env, server_log_dir) as api:
        api.wait_ready(timeout=60)
        model = served(api, name)
        assert (model["version"], model["source"]) == ("1", "registry")
        assert "NotADirectoryError" in model["cache_error"]
        readiness = requests.get(f"{api.url}/readyz", timeout=5)
        assert readiness.status_code == 200
        assert readiness.json() == {
            "status": "degraded",
            "missing": [],
            "problems": ["serving_cache failing"],
        }
        write_errors = metric(
            api, "modelcycle_serving_cache_errors_total", model=name, operation="write"
        )
        assert write_errors is not None and write_errors >= 1

        client.set_registered_model_alias(name, "champion", "2")
        api.wait_for_version(name, "2", timeout=WAIT_SECONDS)
        poll = task(api, "registry_poll")
        assert (poll["running"], poll["stopped"], poll["failing"]) == (True, None, False)
        assert poll["last_success"] is not None

    failures = log_events(api, "serving cache write failed; serving the new version uncached")
    assert {entry["model"] for entry in failures} >= {name}
    assert all("NotADirectoryError" in entry["exception"] for entry in failures)
    assert failures[0]["exception"].startswith("Traceback")


def test_a_corrupt_cache_entry_is_ignored_at_start_and_old_versions_are_removed(
    api_env: dict[str, str], trained_registry: TrainedRegistry, server_log_dir: Path
) -> None:
    name = trained_registry.classifier
    folder = Path(api_env["MODELCYCLE_SERVING_CACHE_DIR"]) / name
    folder.mkdir(parents=True)
    record = folder / "champion.json"
    record.write_text(f'{{"name": "{name}", "version": "1", "ali')  # a write cut short
    stale = folder / "0.onnx"
    stale.write_bytes(b"the artifact of a version nothing points at any more")
    with start_api(api_env, server_log_dir) as api:
        api.wait_ready(timeout=60)
        assert served(api, name)["source"] == "registry"
        wait_until(lambda: not stale.exists(), "the stale cached version is removed")
        assert json.loads(record.read_text())["version"] == "1"
        assert sorted(path.name for path in folder.iterdir()) == ["1.onnx", "champion.json"]
        assert served(api, name)["cache_error"] is None  # the entry was rewritten
        assert requests.get(f"{api.url}/readyz", timeout=5).json()["status"] == "ready"
        read_errors = metric(
            api, "modelcycle_serving_cache_errors_total", model=name, operation="read"
        )
        assert read_errors == 1.0
    (ignored,) = log_events(api, "serving cache entry unreadable; treating it as missing")
    assert ignored["model"] == name
    assert "malformed" in ignored["error"]


def logged_rows(lake: Path, request_id: str) -> int:
    rows = 0
    for part in lake.glob("predictions/date=*/*.parquet"):
        rows += pq.read_table(part).column("request_id").to_pylist().count(request_id)
    return rows


def test_shutdown_flushes_the_prediction_log_after_a_failed_cache_write(
    api_env: dict[str, str],
    trained_registry: TrainedRegistry,
    client: MlflowClient,
    server_log_dir: Path,
) -> None:
    env = {**api_env, "MODELCYCLE_SERVING_LOG_FLUSH_SECONDS": "3600"}  # only shutdown writes
    name = trained_registry.classifier
    cache = Path(api_env["MODELCYCLE_SERVING_CACHE_DIR"])
    request_id = unique_name("flushed")
    lake = trained_registry.home / "lake"
    with start_api(env, server_log_dir) as api:
        api.wait_ready(timeout=60)
        (cache / name / "2.onnx").mkdir()  # a folder where version 2's artifact must go
        client.set_registered_model_alias(name, "champion", "2")
        api.wait_for_version(name, "2", timeout=WAIT_SECONDS)
        # Served first, cached after: the cache's failure shows a moment later.
        wait_until(lambda: served(api, name)["cache_error"] is not None, "a cache error shows")
        assert "IsADirectoryError" in served(api, name)["cache_error"]

        features = len(served(api, name)["features"])
        answer = requests.post(
            f"{api.url}/v1/models/{name}/predict",
            json={"instances": [[1.0] * features] * 3},
            headers={**api.auth, "X-Request-ID": request_id},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.json()["version"] == "2"
        assert api.get("/v1/models").json()["prediction_log"]["buffered_rows"] >= 3
        assert logged_rows(lake, request_id) == 0
    assert logged_rows(lake, request_id) == 3
