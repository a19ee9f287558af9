"""The prediction API end to end: real uvicorn, real MLflow server, models trained for real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mlflow.lightgbm
import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
from mlflow.tracking import MlflowClient

from modelcycle.features.windows import WINDOW_START
from modelcycle.registry.contract import TRAINED_AT_TAG
from tests.serving.conftest import START, TrainedRegistry, train_twice
from tests.support.api import API_KEY, ApiServer, start_api
from tests.support.proxy import TcpProxy
from tests.support.registry import CLASSIFIER, registry_env, server_client
from tests.support.servers import MlflowServer, s3_client, unique_name

pytestmark = pytest.mark.slow


@pytest.fixture
def client(trained_registry: TrainedRegistry) -> Iterator[MlflowClient]:
    """A registry client; every test leaves version 1 as the champion, as it found it."""
    client = server_client(trained_registry.server.tracking_uri)
    yield client
    for name in (trained_registry.classifier, trained_registry.detector):
        client.set_registered_model_alias(name, "champion", "1")


@pytest.fixture(scope="module")
def shared_api(
    trained_registry: TrainedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
    server_log_dir: Path,
) -> Iterator[ApiServer]:
    """One API for the tests that only read what it serves, started once for the module."""
    env = {
        **trained_registry.env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path_factory.mktemp("shared-api") / "cache"),
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
    }
    with start_api(env, server_log_dir) as server:
        server.wait_ready()
        yield server


@pytest.fixture
def champion_api(shared_api: ApiServer, trained_registry: TrainedRegistry) -> ApiServer:
    """The shared API once it serves version 1 of both models again, as a fresh one would:
    tests that promote a version put the alias back, and the API follows on its next poll."""
    for name in (trained_registry.classifier, trained_registry.detector):
        shared_api.wait_for_version(name, "1")
    return shared_api


def _feature_rows(registry: TrainedRegistry, features: list[str], n: int = 50) -> np.ndarray:
    table = pq.read_table(registry.home / "lake" / "features" / f"date={START}" / "part-0.parquet")
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in features]
    return np.column_stack(columns).astype(np.float32)[:n]


def _served(api: ApiServer, name: str) -> dict[str, object]:
    models = api.get("/v1/models").json()["models"]
    entry: dict[str, object] = next(m for m in models if m["name"] == name)
    return entry


def _as_json_rows(rows: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in rows]


def test_predictions_equal_the_native_models_predictions(
    champion_api: ApiServer,
    trained_registry: TrainedRegistry,
    client: MlflowClient,
    mlflow_client_env: dict[str, str],
) -> None:
    name = trained_registry.classifier
    served = _served(champion_api, name)
    features = list(served["features"])  # type: ignore[call-overload]
    rows = _feature_rows(trained_registry, features)
    answer = champion_api.post(f"/v1/models/{name}/predict", {"instances": _as_json_rows(rows)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"], body["alias"]) == (name, "1", "champion")
    native = mlflow.lightgbm.load_model(f"runs:/{served['run_id']}/native")
    expected = native.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-4)

    by_name = [dict(zip(features, row, strict=True)) for row in _as_json_rows(rows[:3])]
    named = champion_api.post(f"/v1/models/{name}/predict", {"records": by_name}).json()
    assert named["predictions"] == body["predictions"][:3]


def test_models_endpoint_shows_what_is_served(
    champion_api: ApiServer, trained_registry: TrainedRegistry, client: MlflowClient
) -> None:
    for name in (trained_registry.classifier, trained_registry.detector):
        served = _served(champion_api, name)
        version = client.get_model_version_by_alias(name, "champion")
        assert served["version"] == version.version == "1"
        assert served["sha256"] == version.tags["modelcycle.onnx_sha256"]
        assert served["run_id"] == version.run_id
        assert served["alias"] == "champion"
        assert served["features"][0] == "n_readings"  # type: ignore[index]
        assert served["loaded_at"]
        # the champion's training time, and its age: what the stale alerts measure
        trained = datetime.fromisoformat(str(served["trained_at"]).replace("Z", "+00:00"))
        assert trained == datetime.fromisoformat(version.tags[TRAINED_AT_TAG])
        hours = (datetime.now(UTC) - trained).total_seconds() / 3600
        assert served["age_hours"] == pytest.approx(hours, abs=0.1)


def test_requests_need_an_api_key_but_health_does_not(champion_api: ApiServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        answer = requests.get(f"{champion_api.url}/v1/models", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert requests.get(f"{champion_api.url}{path}", timeout=5).status_code == 200
    assert API_KEY not in champion_api.log_path.read_text()


def test_promoting_a_version_is_served_after_the_next_poll(
    api: ApiServer, trained_registry: TrainedRegistry, client: MlflowClient
) -> None:
    name = trained_registry.classifier
    client.set_registered_model_alias(name, "champion", "2")
    api.wait_for_version(name, "2", timeout=20)
    answer = api.post(f"/v1/models/{name}/predict", {"instances": [[None] * 51]})
    assert answer.json()["version"] == "2"
    metrics = requests.get(f"{api.url}/metrics", timeout=5).text
    assert f'modelcycle_model_info{{alias="champion",model="{name}"' in metrics
    assert f'modelcycle_model_reloads_total{{model="{name}",outcome="loaded"}} 2.0' in metrics


def test_swapping_versions_under_load_fails_no_request(
    api: ApiServer, trained_registry: TrainedRegistry, client: MlflowClient
) -> None:
    name = trained_registry.classifier
    n_features = len(_served(api, name)["features"])  # type: ignore[arg-type]
    body = {"instances": [[1.0] * n_features] * 5}
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            session.headers.update(api.auth)
            while not stop.is_set():
                answer = session.post(f"{api.url}/v1/models/{name}/predict", json=body, timeout=10)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                else:
                    versions.add(answer.json()["version"])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for version in ("2", "1", "2"):
            client.set_registered_model_alias(name, "champion", version)
            api.wait_for_version(name, version, timeout=20)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert versions == {"1", "2"}


def test_tampered_artifact_is_refused_and_the_old_model_kept(
    api: ApiServer, trained_registry: TrainedRegistry, client: MlflowClient
) -> None:
    name = trained_registry.detector
    location = client.get_model_version_download_uri(name, "2")
    bucket, key = location.removeprefix("s3://").split("/", 1)
    s3 = s3_client(trained_registry.server.env["MLFLOW_S3_ENDPOINT_URL"])
    original = s3.get_object(Bucket=bucket, Key=f"{key}/model.onnx")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"{key}/model.onnx", Body=original + b"\x00")
    try:
        client.set_registered_model_alias(name, "champion", "2")
        deadline = 20.0
        waited = 0.0
        while "sha256" not in str(_served(api, name)["last_error"]) and waited < deadline:
            threading.Event().wait(0.2)
            waited += 0.2
        served = _served(api, name)
        assert served["version"] == "1"
        assert "does not match" in str(served["last_error"])
        metrics = requests.get(f"{api.url}/metrics", timeout=5).text
        assert f'modelcycle_model_reloads_total{{model="{name}",outcome="refused"}}' in metrics
        assert "refused model version" in api.log_path.read_text()
    finally:
        s3.put_object(Bucket=bucket, Key=f"{key}/model.onnx", Body=original)


def _wait_for_problem(api: ApiServer, problem: str, timeout: float = 30.0) -> requests.Response:
    """`/readyz` once it names `problem`; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        readiness = requests.get(f"{api.url}/readyz", timeout=5)
        if problem in readiness.json().get("problems", []):
            return readiness
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz does not name {problem!r}: {readiness.text}")
        time.sleep(0.2)


def test_registry_down_keeps_serving_and_a_restart_serves_from_cache(
    api_env: dict[str, str],
    trained_registry: TrainedRegistry,
    server_log_dir: Path,
    client: MlflowClient,
) -> None:
    name = trained_registry.classifier
    host, port = trained_registry.server.tracking_uri.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port)).start()
    env = {**api_env, "MODELCYCLE_TRACKING_URI": proxy.url, "MLFLOW_TRACKING_URI": proxy.url}
    instances = {"instances": [[None] * 51]}
    with start_api(env, server_log_dir) as api:
        api.wait_ready()
        proxy.cut()
        # A few polls against a dead registry: the API still serves, and says it is degraded.
        readiness = _wait_for_problem(api, "registry_poll failing")
        assert readiness.status_code == 200
        assert readiness.json()["status"] == "degraded"
        served = _served(api, name)
        assert served["version"] == "1"
        assert "unreachable" in str(served["last_error"])
        poll = next(
            t for t in api.get("/v1/models").json()["tasks"] if t["name"] == "registry_poll"
        )
        assert poll["running"] and poll["consecutive_failures"] >= 3
        assert "unreachable" in poll["last_error"]
        assert api.post(f"/v1/models/{name}/predict", instances).status_code == 200
    with start_api(env, server_log_dir) as restarted:
        restarted.wait_ready(timeout=30)
        served = _served(restarted, name)
        assert (served["version"], served["source"]) == ("1", "cache")
        answer = restarted.post(f"/v1/models/{name}/predict", instances)
        assert answer.status_code == 200
        assert answer.json()["version"] == "1"


def test_device_readings_are_scored_by_both_models_with_training_features(
    champion_api: ApiServer, trained_registry: TrainedRegistry
) -> None:
    lake = trained_registry.home / "lake"
    readings = pq.read_table(lake / "readings" / f"date={START}" / "part-0.parquet").to_pylist()
    hour = [r for r in readings if r["device_id"] == "device-0003" and r["timestamp"].hour == 5]
    sensors = [c for c in hour[0] if c.startswith("s")]
    body = {
        "timestamps": [r["timestamp"].isoformat() for r in hour],
        "values": {s: [r[s] for r in hour] for s in sensors},
    }
    answer = champion_api.post("/v1/devices/device-0003/predict", body)
    assert answer.status_code == 200, answer.text
    scored = answer.json()
    assert scored["windows"] == [f"{START}T05:00:00Z"]
    assert {m["model"] for m in scored["models"]} == {
        trained_registry.classifier,
        trained_registry.detector,
    }
    windows = pq.read_table(lake / "features" / f"date={START}" / "part-0.parquet").to_pylist()
    row = next(r for r in windows if r["device_id"] == "device-0003" and r[WINDOW_START].hour == 5)
    for model in scored["models"]:
        features = _served(champion_api, model["model"])["features"]
        vector = [[row[f] for f in features]]  # type: ignore[attr-defined]
        direct = champion_api.post(f"/v1/models/{model['model']}/predict", {"instances": vector})
        assert model["predictions"] == pytest.approx(direct.json()["predictions"], abs=1e-6)

    unknown = champion_api.post("/v1/devices/device-9999/predict", body)
    assert unknown.status_code == 404
    assert "device-9999" in unknown.json()["detail"]


def test_webhook_from_mlflow_reloads_at_once(
    api_env: dict[str, str],
    trained_registry: TrainedRegistry,
    server_log_dir: Path,
    client: MlflowClient,
) -> None:
    secret = "webhook-secret-4b1d"
    env = {
        **api_env,
        "MODELCYCLE_SERVING_POLL_SECONDS": "3600",
        "MODELCYCLE_WEBHOOK_SECRET": secret,
    }
    name = trained_registry.detector
    with start_api(env, server_log_dir) as api:
        api.wait_ready()
        unsigned = requests.post(f"{api.url}/v1/webhooks/mlflow", json={}, timeout=5)
        assert unsigned.status_code == 401
        webhook = client.create_webhook(
            name=f"{trained_registry.prefix}-api",
            url=f"{api.url}/v1/webhooks/mlflow",
            events=["model_version_alias.created"],
            secret=secret,
        )
        try:
            client.set_registered_model_alias(name, "champion", "2")
            seconds = api.wait_for_version(name, "2", timeout=15)
            assert seconds < 10  # the poll is an hour away: only the webhook explains it
        finally:
            client.delete_webhook(webhook.webhook_id)
        assert "webhook: alias moved" in api.log_path.read_text()


@pytest.mark.postgres
def test_registry_on_postgresql_serves_and_reloads(
    fleet_home: Path, mlflow_postgres_server: MlflowServer, server_log_dir: Path, tmp_path: Path
) -> None:
    """The same lifecycle with MLflow's backend store on PostgreSQL (artifacts on S3)."""
    prefix = unique_name("serving-pg")
    env = registry_env(fleet_home, mlflow_postgres_server, prefix)
    train_twice(env)
    name = f"{prefix}-{CLASSIFIER}"
    api_env = {
        **env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path / "cache"),
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
    }
    with start_api(api_env, server_log_dir) as api:
        api.wait_ready()
        n_features = len(_served(api, name)["features"])  # type: ignore[arg-type]
        body = {"instances": [[1.0] * n_features]}
        assert api.post(f"/v1/models/{name}/predict", body).json()["version"] == "1"
        server_client(mlflow_postgres_server.tracking_uri).set_registered_model_alias(
            name, "champion", "2"
        )
        api.wait_for_version(name, "2", timeout=20)
        assert api.post(f"/v1/models/{name}/predict", body).json()["version"] == "2"


def _predict_count(api: ApiServer, name: str) -> float:
    text = api.get("/metrics").text
    labels = ('model="' + name + '"', 'route="/v1/models/{name}/predict"', 'status="200"')
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("modelcycle_requests_total{") and all(part in line for part in labels)
    ]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_plain_rows_take_the_hot_path_and_answer_as_the_full_app(
    champion_api: ApiServer, trained_registry: TrainedRegistry
) -> None:
    """Numbers only (serving/hot_path.py) and rows by name (the framework's route) give the
    same answer, request id and metrics."""
    name = trained_registry.classifier
    features = list(_served(champion_api, name)["features"])  # type: ignore[call-overload]
    rows = np.nan_to_num(_feature_rows(trained_registry, features, n=5), nan=0.0)
    before = _predict_count(champion_api, name)
    plain = requests.post(
        f"{champion_api.url}/v1/models/{name}/predict",
        json={"instances": rows.tolist()},
        headers={**champion_api.auth, "X-Request-ID": "hot-path-1"},
        timeout=10,
    )
    by_name = champion_api.post(
        f"/v1/models/{name}/predict",
        {"records": [dict(zip(features, map(float, row), strict=True)) for row in rows]},
    )
    assert plain.status_code == by_name.status_code == 200, plain.text
    assert plain.json() == by_name.json()
    assert plain.headers["x-request-id"] == "hot-path-1"
    assert plain.headers["content-type"] == "application/json"
    assert _predict_count(champion_api, name) == before + 2
