"""Model artifacts on `gs://`: trained, registered, verified and served from a GCS API on loopback.

GCS itself cannot run here; gcp-storage-emulator speaks its JSON API (a named stand-in for the
managed service). `MODELCYCLE_GCS_ENDPOINT_URL` is the one setting: it points the lake's gcsfs
and MLflow's google-cloud-storage client at the emulator, with anonymous credentials, so nothing
asks a metadata server. Two set-ups: MLflow writing `gs://` itself (embedded store,
`MODELCYCLE_ARTIFACT_URL=gs://…`), and a tracking server proxying artifacts to
`--artifacts-destination gs://…`, where only the server talks to GCS.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from gcsfs.core import GCSFileSystem

from modelcycle.registry.contract import SHA256_TAG
from modelcycle.registry.loading import RegistrySource, load_verified_model
from modelcycle.settings import Settings
from tests.serving.conftest import DAYS, START
from tests.support.api import ApiServer, start_api
from tests.support.cli import invoke_cli
from tests.support.gcs import GCS_BUCKET, start_gcs_emulator
from tests.support.registry import CLASSIFIER, DETECTOR, PrefixedModels
from tests.support.servers import MlflowServer, start_mlflow_server, unique_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_gcs_emulator(tmp_path_factory.mktemp("gcs-artifacts-logs")) as url:
        yield url


@pytest.fixture
def gcs(gcs_endpoint: str) -> GCSFileSystem:
    """A client of the emulator independent of modelcycle, to read and tamper with objects."""
    return GCSFileSystem(endpoint_url=gcs_endpoint, token="anon")


class GcsModels(PrefixedModels):
    def __init__(self, prefix: str, env: dict[str, str]):
        self.prefix = prefix
        self.env = env


def _models_env(home: Path, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_EXPERIMENT_NAME": prefix,
        "MODELCYCLE_CLASSIFIER_MODEL_NAME": f"{prefix}-{CLASSIFIER}",
        "MODELCYCLE_ANOMALY_MODEL_NAME": f"{prefix}-{DETECTOR}",
        **extra,
    }


def _train_once(env: dict[str, str]) -> list[dict[str, Any]]:
    last = (START + timedelta(days=DAYS - 1)).isoformat()
    result = invoke_cli("train", "--date", last, "--window-days", str(DAYS), "--json", env=env)
    assert result.returncode == 0, result.stderr
    versions: list[dict[str, Any]] = json.loads(result.stdout)
    return versions


def _listed_versions(env: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    result = invoke_cli("models", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return [v for v in json.loads(result.stdout) if v["name"].startswith(prefix)]


def _predict_once(api: ApiServer, name: str) -> requests.Response:
    features = next(m for m in api.get("/v1/models").json()["models"] if m["name"] == name)
    width = len(features["features"])
    return api.post(f"/v1/models/{name}/predict", {"instances": [[0.5] * width]})


def _api_env(env: dict[str, str], cache: Path) -> dict[str, str]:
    return {**env, "MODELCYCLE_SERVING_CACHE_DIR": str(cache)}


@pytest.fixture(scope="module")
def embedded_on_gcs(
    fleet_home: Path, gcs_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> GcsModels:
    """Both models trained once by the embedded MLflow store, artifacts under `gs://fleet/…`."""
    prefix = unique_name("gcs")
    store = tmp_path_factory.mktemp("mlflow-embedded") / "mlflow.db"
    env = _models_env(
        fleet_home,
        prefix,
        MODELCYCLE_TRACKING_URI=f"sqlite:///{store}",
        MODELCYCLE_ARTIFACT_URL=f"gs://{GCS_BUCKET}/{prefix}",
        MODELCYCLE_GCS_ENDPOINT_URL=gcs_endpoint,
    )
    _train_once(env)
    return GcsModels(prefix, env)


def test_a_model_with_artifacts_on_gcs_is_verified_and_served(
    embedded_on_gcs: GcsModels,
    gcs: GCSFileSystem,
    tmp_path: Path,
    server_log_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = embedded_on_gcs
    versions = _listed_versions(models.env, models.prefix)
    assert {v["name"] for v in versions} == {models.classifier, models.detector}
    for version in versions:
        assert version["artifact_uri"].startswith(f"gs://{GCS_BUCKET}/{models.prefix}/")
        onnx = gcs.cat_file(version["artifact_uri"].removeprefix("gs://") + "/model.onnx")
        assert hashlib.sha256(onnx).hexdigest() == version["tags"][SHA256_TAG]

    # The loader the API, monitoring and the gate share, in this process: resolve, fetch, verify.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", models.env["MODELCYCLE_GCS_ENDPOINT_URL"])
    settings = Settings(
        home=Path(models.env["MODELCYCLE_HOME"]),
        tracking_uri=models.env["MODELCYCLE_TRACKING_URI"],
        gcs_endpoint_url=models.env["MODELCYCLE_GCS_ENDPOINT_URL"],
    )
    source = RegistrySource(settings)
    record = source.resolve(models.classifier, "champion")
    loaded = load_verified_model(
        record, source.fetch(record), source="registry", now=datetime.now(UTC)
    )
    scores = loaded.predict(np.zeros((2, loaded.n_features), dtype=np.float32))
    assert scores.shape == (2,)

    with start_api(_api_env(models.env, tmp_path / "cache"), server_log_dir) as api:
        api.wait_ready()
        answer = _predict_once(api, models.classifier)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == "1"


def test_a_tampered_model_file_on_gcs_is_refused(
    embedded_on_gcs: GcsModels, gcs: GCSFileSystem, tmp_path: Path, server_log_dir: Path
) -> None:
    models = embedded_on_gcs
    detector = next(
        v for v in _listed_versions(models.env, models.prefix) if v["name"] == models.detector
    )
    key = detector["artifact_uri"].removeprefix("gs://") + "/model.onnx"
    original = gcs.cat_file(key)
    gcs.pipe_file(key, original + b"\x00")
    try:
        with start_api(_api_env(models.env, tmp_path / "cache"), server_log_dir) as api:
            served = _wait_for_error(api, models.detector)
            assert served["version"] is None
            assert "does not match the registered" in str(served["last_error"])
            refused = api.post(f"/v1/models/{models.detector}/predict", {"instances": [[0.0]]})
            assert refused.status_code == 503
            # The untouched model from the same bucket is served as usual.
            assert _predict_once(api, models.classifier).status_code == 200
    finally:
        gcs.pipe_file(key, original)


def _wait_for_error(api: ApiServer, name: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while True:
        served: dict[str, Any] = next(
            m for m in api.get("/v1/models").json()["models"] if m["name"] == name
        )
        if served["last_error"] or datetime.now(UTC) > deadline:
            return served
        time.sleep(0.2)


@pytest.fixture(scope="module")
def proxying_server(
    gcs_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A tracking server that keeps artifacts under `gs://fleet/proxied` for its clients."""
    folder = tmp_path_factory.mktemp("mlflow-gcs")
    with start_mlflow_server(
        backend_store_uri=f"sqlite:///{folder / 'mlflow.db'}",
        default_artifact_root=f"gs://{GCS_BUCKET}/proxied",
        env={"STORAGE_EMULATOR_HOST": gcs_endpoint},
        log_dir=folder,
        proxy_artifacts=True,
    ) as server:
        yield server


def test_a_server_proxying_artifacts_to_gcs_serves_verified_models(
    fleet_home: Path,
    proxying_server: MlflowServer,
    gcs: GCSFileSystem,
    tmp_path: Path,
    server_log_dir: Path,
) -> None:
    prefix = unique_name("gcs-proxied")
    # The client has no GCS setting at all: only the server writes to the bucket.
    env = _models_env(fleet_home, prefix, MODELCYCLE_TRACKING_URI=proxying_server.tracking_uri)
    _train_once(env)
    for version in _listed_versions(env, prefix):
        assert version["artifact_uri"].startswith("mlflow-artifacts:/")
        # The server keeps `mlflow-artifacts:/<path>` at `<destination>/<path>`.
        path = version["artifact_uri"].removeprefix("mlflow-artifacts:/")
        onnx = gcs.cat_file(f"{GCS_BUCKET}/proxied/{path}/model.onnx")
        assert hashlib.sha256(onnx).hexdigest() == version["tags"][SHA256_TAG]

    with start_api(_api_env(env, tmp_path / "cache"), server_log_dir) as api:
        api.wait_ready()
        assert _predict_once(api, f"{prefix}-{CLASSIFIER}").status_code == 200
