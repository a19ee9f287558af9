"""One big request cannot stall the API: limits before parsing, heavy work in threads, a cap.

Real oversized requests against a running uvicorn; what is asserted is ordering (health answered
while a request was being worked on) and memory, never how long something took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from modelcycle.features.windows import FeatureSpec
from tests.serving.conftest import TrainedRegistry
from tests.support.api import ApiServer, start_api

pytestmark = pytest.mark.slow

DEVICE_PATH = "/v1/devices/device-0003/predict"
MAX_ROWS = 1000  # the default: device requests carry up to 60 × this many readings
WORKING = "modelcycle_api_work_in_progress"
ATTEMPTS = 5


@pytest.fixture(scope="module")
def busy_api(
    trained_registry: TrainedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
    server_log_dir: Path,
) -> Iterator[ApiServer]:
    """An API that works on one big request at a time and refuses a second at once."""
    env = {
        **trained_registry.env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "MODELCYCLE_SERVING_MAX_CONCURRENT": "1",
        "MODELCYCLE_SERVING_BUSY_WAIT_SECONDS": "0",
    }
    with start_api(env, server_log_dir) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def biggest_device_body(busy_api: ApiServer) -> dict[str, Any]:
    """As many readings as one device request may carry: a few MB of JSON."""
    features = busy_api.get("/v1/models").json()["models"][0]["features"]
    sensors = FeatureSpec.from_feature_names(features).sensors
    n = 60 * MAX_ROWS
    start = datetime(2026, 1, 1)
    return {
        "timestamps": [(start + timedelta(seconds=i)).isoformat() for i in range(n)],
        "values": {sensor: [12.5 + (i % 7)] * n for i, sensor in enumerate(sensors)},
    }


def _working(api: ApiServer) -> float:
    """Requests the API is parsing or scoring in worker threads right now, from /metrics."""
    for line in requests.get(f"{api.url}/metrics", timeout=30).text.splitlines():
        if line.startswith(f"{WORKING} "):
            return float(line.split()[1])
    raise AssertionError(f"/metrics has no {WORKING}")


def _while_worked_on(
    api: ApiServer, body: dict[str, Any], probe: Callable[[], bool]
) -> tuple[bool, requests.Response]:
    """Send `body` in the background; whenever the API is working on it, call `probe` until it
    returns True. Gives whether it did, and the big request's answer."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        heavy: Future[requests.Response] = pool.submit(
            requests.post, f"{api.url}{DEVICE_PATH}", json=body, headers=api.auth, timeout=120
        )
        done = False
        while not heavy.done() and not done:
            done = _working(api) == 1 and probe()
        return done, heavy.result()


def test_health_answers_while_a_big_request_is_worked_on(
    busy_api: ApiServer, biggest_device_body: dict[str, Any]
) -> None:
    def health_answers_during_the_work() -> bool:
        health = requests.get(f"{busy_api.url}/healthz", timeout=30)
        return health.status_code == 200 and _working(busy_api) == 1

    for _ in range(ATTEMPTS):
        answered, heavy = _while_worked_on(
            busy_api, biggest_device_body, health_answers_during_the_work
        )
        assert heavy.status_code == 200, heavy.text
        assert len(heavy.json()["windows"]) == 17  # 60 000 seconds from midnight
        if answered:
            return
    pytest.fail("/healthz was never answered while the big request was being worked on")


def test_a_big_request_is_refused_with_503_while_the_work_slot_is_taken(
    busy_api: ApiServer, trained_registry: TrainedRegistry, biggest_device_body: dict[str, Any]
) -> None:
    name = trained_registry.classifier
    features = busy_api.get("/v1/models").json()["models"][0]["features"]
    rows = {"instances": [[0.5] * len(features)] * 400}  # big enough to need a work slot
    refusals: list[requests.Response] = []

    def second_request_refused() -> bool:
        answer = busy_api.post(f"/v1/models/{name}/predict", rows)
        if answer.status_code == 503:
            refusals.append(answer)
        return bool(refusals)

    for _ in range(ATTEMPTS):
        _, heavy = _while_worked_on(busy_api, biggest_device_body, second_request_refused)
        assert heavy.status_code == 200, heavy.text
        if refusals:
            break
    assert refusals, "a second big request was never refused while the slot was taken"
    refused = refusals[0]
    assert refused.headers["Retry-After"] == "1"
    assert "MODELCYCLE_SERVING_MAX_CONCURRENT" in refused.json()["detail"]
    assert busy_api.post(f"/v1/models/{name}/predict", rows).status_code == 200  # slot free
    metrics = requests.get(f"{busy_api.url}/metrics", timeout=5).text.splitlines()
    counted = next(
        line for line in metrics if line.startswith("modelcycle_api_busy_refusals_total")
    )
    assert float(counted.split()[1]) >= 1


def _proc_status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_an_over_limit_body_is_refused_before_it_is_parsed(
    busy_api: ApiServer, trained_registry: TrainedRegistry
) -> None:
    """80 000 rows in just under 8 MiB: parsed into Python objects this is hundreds of MB."""
    assert busy_api.pid is not None
    row = b"[" + b",".join([b"0"] * 51) + b"]"
    body = b'{"instances": [' + b",".join([row] * 80_000) + b"]}"
    rss_before = _proc_status_bytes(busy_api.pid, "VmRSS")
    Path(f"/proc/{busy_api.pid}/clear_refs").write_text("5")  # restart the peak (VmHWM) here
    answer = requests.post(
        f"{busy_api.url}/v1/models/{trained_registry.classifier}/predict",
        data=body,
        headers={**busy_api.auth, "Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 413, answer.text
    detail = answer.json()["detail"]
    assert "at most 1000 rows" in detail
    assert "MODELCYCLE_SERVING_MAX_ROWS" in detail
    peak_growth = _proc_status_bytes(busy_api.pid, "VmHWM") - rss_before
    # The body itself, received and joined, is ~16 MB; parsing it would take ~300 MB.
    assert peak_growth < 96 * 1024 * 1024, f"peak memory grew {peak_growth / 2**20:.0f} MiB"
