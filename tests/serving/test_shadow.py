"""Shadow scoring end to end: real uvicorn, real MLflow server with S3 artifacts, a real lake.

The champion (version 1) answers; the version behind the shadow alias (version 2) scores the same
rows off the response path, and its scores land in `lake/shadow/` beside the champion's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from mlflow.tracking import MlflowClient
from prometheus_client import generate_latest

from modelcycle.registry.contract import INPUT_NAME, ONNX_ARTIFACT, SCORE_OUTPUT
from modelcycle.registry.loading import RegistrySource
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.metrics import ApiMetrics
from modelcycle.serving.prediction_log import SHADOW_TABLE, PredictionLog
from modelcycle.serving.shadow import ChampionAnswer, ShadowJob, ShadowScorer
from modelcycle.settings import Settings
from modelcycle.storage import open_store
from tests.serving.conftest import START, TrainedRegistry
from tests.support.api import ApiServer, start_api
from tests.support.cli import invoke_cli
from tests.support.registry import server_client
from tests.support.servers import s3_client, unique_name

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60.0


@pytest.fixture
def client(trained_registry: TrainedRegistry) -> MlflowClient:
    return server_client(trained_registry.server.tracking_uri)


@pytest.fixture
def shadow_alias(trained_registry: TrainedRegistry, client: MlflowClient) -> Iterator[str]:
    """An alias of this test's own on version 2 of both models: the challenger to shadow."""
    alias = unique_name("shadow")
    names = (trained_registry.classifier, trained_registry.detector)
    for name in names:
        client.set_registered_model_alias(name, alias, "2")
    yield alias
    for name in names:
        client.delete_registered_model_alias(name, alias)


@pytest.fixture
def shadow_env(api_env: dict[str, str], shadow_alias: str, tmp_path: Path) -> dict[str, str]:
    """Shadow scoring on, a lake of the test's own, and writes only at shutdown."""
    return {
        **api_env,
        "MODELCYCLE_LAKE_URL": str(tmp_path / "lake"),
        "MODELCYCLE_SERVING_SHADOW": "true",
        "MODELCYCLE_SERVING_SHADOW_ALIAS": shadow_alias,
        "MODELCYCLE_SERVING_LOG_FLUSH_SECONDS": "3600",
    }


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _models(api: ApiServer) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/v1/models").json()
    return body


def _shadow_model(api: ApiServer, name: str) -> dict[str, Any]:
    return next(m for m in _models(api)["shadow"]["models"] if m["name"] == name)


def _features(api: ApiServer, name: str) -> list[str]:
    return next(m["features"] for m in _models(api)["models"] if m["name"] == name)


def _feature_rows(registry: TrainedRegistry, features: list[str], n: int = 40) -> np.ndarray:
    table = pq.read_table(registry.home / "lake" / "features" / f"date={START}" / "part-0.parquet")
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in features]
    return np.column_stack(columns).astype(np.float32)[:n]


def _as_json(rows: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in rows]


def _onnx_scores(
    registry: TrainedRegistry, client: MlflowClient, name: str, version: str, rows: np.ndarray
) -> np.ndarray:
    """The version's own ONNX artifact, straight from S3, run in ONNX Runtime."""
    location = client.get_model_version_download_uri(name, version)
    bucket, key = location.removeprefix("s3://").split("/", 1)
    s3 = s3_client(registry.server.env["MLFLOW_S3_ENDPOINT_URL"])
    data = s3.get_object(Bucket=bucket, Key=f"{key}/{ONNX_ARTIFACT}")["Body"].read()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: rows})
    return np.asarray(scores, dtype=np.float32)


def _lake_table(lake: Path, table: str) -> pa.Table | None:
    parts = sorted(lake.glob(f"{table}/date=*/*.parquet"))
    return pa.concat_tables([pq.read_table(part) for part in parts]) if parts else None


def test_the_challenger_scores_live_requests_into_the_lake_while_the_champion_answers(
    shadow_env: dict[str, str],
    trained_registry: TrainedRegistry,
    client: MlflowClient,
    server_log_dir: Path,
    tmp_path: Path,
) -> None:
    name = trained_registry.classifier
    with start_api(shadow_env, server_log_dir) as api:
        api.wait_ready()
        _wait_for(lambda: _models(api)["shadow"]["state"] == "scoring", "the challenger")
        rows = _feature_rows(trained_registry, _features(api, name))
        answers = []
        for chunk in (rows[:10], rows[10:25], rows[25:]):
            answer = api.post(f"/v1/models/{name}/predict", {"instances": _as_json(chunk)})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        assert {(a["version"], a["alias"]) for a in answers} == {("1", "champion")}
        _wait_for(lambda: _models(api)["shadow"]["rows_scored"] == len(rows), "shadow scores")
        shadow = _models(api)["shadow"]
        assert _shadow_model(api, name) | {"last_checked": None} == {
            "name": name,
            "version": "2",
            "champion_version": "1",
            "scoring": True,
            "last_checked": None,
            "last_error": None,
        }
        assert (shadow["requests_scored"], shadow["dropped"], shadow["errors"]) == (3, 0, 0)
        metrics = requests.get(f"{api.url}/metrics", timeout=5).text
        assert f"modelcycle_shadow_rows_scored_total {float(len(rows))}" in metrics
        alias = shadow_env["MODELCYCLE_SERVING_SHADOW_ALIAS"]
        info = f'modelcycle_shadow_model_info{{alias="{alias}",model="{name}",version="2"}} 1.0'
        assert info in metrics
    # The flush interval is an hour: only the shutdown's flush can have written these.
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    assert set(logged.column("version").to_pylist()) == {"2"}
    assert set(logged.column("champion_version").to_pylist()) == {"1"}
    order = np.argsort(np.array(logged.column("predicted_at").to_pylist()), kind="stable")
    shadow_scores = np.array(logged.column("score").to_pylist())[order]
    champion_scores = np.array(logged.column("champion_score").to_pylist())[order]
    served = np.concatenate([a["predictions"] for a in answers])
    np.testing.assert_allclose(champion_scores, served, atol=1e-6)
    challenger = _onnx_scores(trained_registry, client, name, "2", rows)
    np.testing.assert_allclose(shadow_scores, challenger, atol=1e-6)
    assert not np.allclose(challenger, served)  # two different models were really compared
    champion = _lake_table(tmp_path / "lake", "predictions")
    assert champion is not None and set(champion.column("version").to_pylist()) == {"1"}

    # The release comparison reads the same rows back as its live-traffic section.
    compared = invoke_cli("release", "compare", name, "1", "2", "--json", env=shadow_env)
    assert compared.returncode == 0, compared.stderr
    live = json.loads(compared.stdout)["live"]
    first, second = (_threshold(client, name, version) for version in ("1", "2"))
    assert (live["rows"], live["requests"]) == (len(rows), 3)
    agreement = np.mean((served >= first) == (challenger >= second))
    assert live["agreement"] == pytest.approx(agreement)
    difference = np.abs(served - challenger).mean()
    assert live["mean_abs_difference"] == pytest.approx(difference, abs=1e-6)


def _threshold(client: MlflowClient, name: str, version: str) -> float:
    run_id = str(client.get_model_version(name, version).run_id)
    return float(client.get_run(run_id).data.params["decision_threshold"])


def test_an_unloadable_challenger_leaves_the_champion_answering_and_shows_why(
    shadow_env: dict[str, str],
    trained_registry: TrainedRegistry,
    client: MlflowClient,
    server_log_dir: Path,
    tmp_path: Path,
) -> None:
    name = trained_registry.classifier
    location = client.get_model_version_download_uri(name, "2")
    bucket, key = location.removeprefix("s3://").split("/", 1)
    s3 = s3_client(trained_registry.server.env["MLFLOW_S3_ENDPOINT_URL"])
    original = s3.get_object(Bucket=bucket, Key=f"{key}/{ONNX_ARTIFACT}")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"{key}/{ONNX_ARTIFACT}", Body=original + b"\x00")
    try:
        with start_api(shadow_env, server_log_dir) as api:
            api.wait_ready()
            _wait_for(lambda: _shadow_model(api, name)["last_error"] is not None, "the refusal")
            rows = _feature_rows(trained_registry, _features(api, name))
            answer = api.post(f"/v1/models/{name}/predict", {"instances": _as_json(rows)})
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == "1"
            expected = _onnx_scores(trained_registry, client, name, "1", rows)
            np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-6)
            broken = _shadow_model(api, name)
            assert (broken["version"], broken["scoring"]) == (None, False)
            assert "does not match" in broken["last_error"]
            assert requests.get(f"{api.url}/readyz", timeout=5).json()["status"] == "ready"
    finally:
        s3.put_object(Bucket=bucket, Key=f"{key}/{ONNX_ARTIFACT}", Body=original)
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is None or name not in logged.column("model").to_pylist()


def test_with_shadow_scoring_off_nothing_is_shadowed(
    api_env: dict[str, str],
    shadow_alias: str,
    trained_registry: TrainedRegistry,
    server_log_dir: Path,
    tmp_path: Path,
) -> None:
    env = {**api_env, "MODELCYCLE_LAKE_URL": str(tmp_path / "lake")}
    name = trained_registry.classifier
    with start_api({**env, "MODELCYCLE_SERVING_SHADOW_ALIAS": shadow_alias}, server_log_dir) as api:
        api.wait_ready()
        rows = _feature_rows(trained_registry, _features(api, name))
        assert api.post(f"/v1/models/{name}/predict", {"instances": _as_json(rows)}).ok
        assert _models(api)["shadow"] is None
    assert _lake_table(tmp_path / "lake", "predictions") is not None  # the shutdown flushed
    assert not (tmp_path / "lake" / "shadow").exists()


def test_a_full_queue_drops_requests_counted_and_shutdown_scores_what_was_queued(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The worker is not started, so nothing leaves the queue until shutdown: deterministic."""
    for key, value in trained_registry.env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(serving_cache_dir=tmp_path / "cache")
    name = trained_registry.classifier
    manager = ModelManager(
        names=(name,),
        alias=shadow_alias,
        source=RegistrySource(settings),
        cache=ArtifactCache(tmp_path / "cache"),
        optional=True,
    )
    assert manager.refresh(name) == "loaded"
    lake = open_store(str(tmp_path / "lake"))
    scorer = ShadowScorer(
        manager, PredictionLog(lake, table=SHADOW_TABLE), max_queued=2, max_rows=1000
    )
    features = list(manager.get(name).features)
    rows = _feature_rows(trained_registry, features, n=3)
    raw = json.dumps({"instances": _as_json(rows)}).encode()

    def job(request_id: str, champion_version: str = "1") -> ShadowJob:
        answer = ChampionAnswer(name, champion_version, [0.5] * len(rows))
        return ShadowJob(raw, (answer,), request_id, datetime.now(UTC))

    scorer.submit(job("same", champion_version="2"))  # the challenger is the champion: idle
    for request_id in ("r1", "r2", "r3", "r4", "r5"):
        scorer.submit(job(request_id))
    assert (scorer.queued, scorer.dropped) == (2, 3)
    metrics = ApiMetrics(manager, shadow=scorer)
    text = generate_latest(metrics.registry).decode()
    assert "modelcycle_shadow_requests_dropped_total 3.0" in text
    assert "modelcycle_shadow_queued_requests 2.0" in text

    scorer.start()
    scorer.stop()
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    assert logged.column("request_id").to_pylist() == ["r1"] * 3 + ["r2"] * 3
    assert (scorer.requests_scored, scorer.rows_scored) == (2, 6)


def _queued_scorer(
    registry: TrainedRegistry,
    alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample: float = 1.0,
) -> ShadowScorer:
    """A scorer whose worker is not started yet, so what is submitted stays queued."""
    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(serving_cache_dir=tmp_path / "cache")
    manager = ModelManager(
        names=(registry.classifier,),
        alias=alias,
        source=RegistrySource(settings),
        cache=ArtifactCache(tmp_path / "cache"),
        optional=True,
    )
    assert manager.refresh(registry.classifier) == "loaded"
    lake = open_store(str(tmp_path / "lake"))
    log = PredictionLog(lake, table=SHADOW_TABLE)
    return ShadowScorer(manager, log, max_queued=1000, max_rows=1000, sample=sample)


def test_queued_requests_are_scored_in_batches_with_the_challengers_own_scores(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """300 queued requests (1-3 rows each; some carry the parsed matrix as the route hands it,
    some only the body) come out as two batches, every row equal to the challenger's own ONNX
    score; one request whose row count disagrees fails alone, counted."""
    name = trained_registry.classifier
    scorer = _queued_scorer(trained_registry, shadow_alias, monkeypatch, tmp_path)
    features = tuple(scorer.manager.get(name).features)
    rows = _feature_rows(trained_registry, list(features), n=40)
    challenger = _onnx_scores(trained_registry, client, name, "2", rows)  # row by row the same
    expected: dict[str, np.ndarray] = {}
    for i in range(300):
        chunk = rows[i % 38 : i % 38 + 1 + i % 3]
        request_id = f"r{i:03d}"
        champion_rows = len(chunk) + (1 if i == 7 else 0)  # r007: a row count that disagrees
        answer = ChampionAnswer(name, "1", [0.5] * champion_rows)
        raw = json.dumps({"instances": _as_json(chunk)}).encode()
        reused = i % 2 == 1  # as the route hands it: the champion's parsed matrix, reused
        scorer.submit(
            ShadowJob(
                raw,
                (answer,),
                request_id,
                datetime.now(UTC),
                matrix=chunk if reused else None,
                features=features if reused else (),
            )
        )
        if i != 7:
            expected[request_id] = challenger[i % 38 : i % 38 + 1 + i % 3]
    assert scorer.queued == 300

    scorer.start()
    scorer.stop()
    # At most 256 requests a batch: the 300 queued ones are two batches (two ONNX Runtime calls).
    assert (scorer.batches, scorer.requests_scored, scorer.health.errors) == (2, 299, 1)
    assert "scored 2 rows, the champion v1 3" in str(scorer.health.last_error)
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    ids = logged.column("request_id").to_pylist()
    assert ids == [rid for rid in sorted(expected) for _ in expected[rid]]  # in request order
    scores = np.array(logged.column("score").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(scores, np.concatenate(list(expected.values())), atol=1e-6)
    assert set(logged.column("version").to_pylist()) == {"2"}
    text = generate_latest(ApiMetrics(scorer.manager, shadow=scorer).registry).decode()
    assert "modelcycle_shadow_batches_total 2.0" in text
    assert f"modelcycle_shadow_rows_scored_total {float(len(scores))}" in text


def test_requests_not_sampled_are_skipped_counted_and_not_dropped(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    name = trained_registry.classifier
    scorer = _queued_scorer(trained_registry, shadow_alias, monkeypatch, tmp_path, sample=0.0)
    rows = _feature_rows(trained_registry, list(scorer.manager.get(name).features), n=2)
    raw = json.dumps({"instances": _as_json(rows)}).encode()
    for request_id in ("r1", "r2", "r3"):
        scorer.submit(
            ShadowJob(raw, (ChampionAnswer(name, "1", [0.5, 0.5]),), request_id, datetime.now(UTC))
        )
    assert (scorer.queued, scorer.skipped, scorer.dropped) == (0, 3, 0)
    text = generate_latest(ApiMetrics(scorer.manager, shadow=scorer).registry).decode()
    assert "modelcycle_shadow_requests_skipped_total 3.0" in text
    assert "modelcycle_shadow_requests_dropped_total 0.0" in text
    scorer.start()
    scorer.stop()
    assert _lake_table(tmp_path / "lake", "shadow") is None
