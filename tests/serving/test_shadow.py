"""Shadow scoring end to end: real uvicorn, real MLflow server with S3 artifacts, a real lake.

The champion (version 1) answers; the version behind the shadow alias (version 2) scores the same
rows off the response path, and its scores land in `lake/shadow/` beside the champion's.
"""

from __future__ import annotations

import io
import json
import os
import signal
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
from modelcycle.serving.shadow import MAX_BATCH_REQUESTS, ShadowScorer
from modelcycle.serving.shadow_jobs import (
    ChampionAnswer,
    FrameError,
    ShadowJob,
    decode_jobs,
    encode_jobs,
    features_digest,
    read_frame,
    write_frame,
)
from modelcycle.serving.shadow_scoring import BatchScorer
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
        # A test counts every request it sent; a busy test machine must not look saturated.
        "MODELCYCLE_SERVING_SHADOW_SHED_ABOVE": "64",
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


def _settings(
    registry: TrainedRegistry,
    alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    **overrides: Any,
) -> Settings:
    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    return Settings(
        serving_cache_dir=tmp_path / "cache",
        lake_url=str(tmp_path / "lake"),
        serving_shadow=True,
        serving_shadow_alias=alias,
        **{"serving_shadow_shed_above": 64.0, **overrides},
    )


def _heard_of(scorer: ShadowScorer, name: str, version: str, features: tuple[str, ...]) -> None:
    """What a worker reports once it holds `version`: the API side now queues for it."""
    state = {"version": version, "digest": features_digest(features)}
    scorer.observe(
        {
            "kind": "status",
            "models": {name: {**state, "last_checked": None, "last_error": None}},
            "tasks": [],
            **dict.fromkeys(("requests_scored", "rows_scored", "batches", "rows_written"), 0),
        }
    )


def _challenger(settings: Settings, name: str) -> ModelManager:
    manager = ModelManager(
        names=(name,),
        alias=settings.serving_shadow_alias,
        source=RegistrySource(settings),
        cache=ArtifactCache(settings.resolved_serving_cache_dir),
        optional=True,
    )
    assert manager.refresh(name) == "loaded"
    return manager


def _scorer_and_body(
    registry: TrainedRegistry,
    alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rows: int,
    **overrides: Any,
) -> tuple[Settings, ShadowScorer, bytes]:
    """A scorer (not started) that has heard of challenger v2 of the classifier, and a body of
    `rows` feature rows."""
    settings = _settings(registry, alias, monkeypatch, tmp_path, **overrides)
    name = registry.classifier
    features = _challenger(settings, name).get(name).features
    scorer = ShadowScorer(settings)
    _heard_of(scorer, name, "2", features)
    matrix = _feature_rows(registry, list(features), n=rows)
    return settings, scorer, json.dumps({"instances": _as_json(matrix)}).encode()


def test_a_full_queue_drops_requests_counted_and_shutdown_scores_what_was_queued(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Nothing leaves the queue before the worker starts, so the drops are deterministic; then
    a real worker process scores the queued requests, and the stop flushes them to the lake."""
    settings, scorer, raw = _scorer_and_body(
        trained_registry, shadow_alias, monkeypatch, tmp_path, 3, serving_shadow_queue=2
    )
    name = trained_registry.classifier

    def job(request_id: str, champion_version: str = "1") -> ShadowJob:
        answer = ChampionAnswer(name, champion_version, [0.5] * 3)  # three rows a request
        return ShadowJob(raw, (answer,), request_id, datetime.now(UTC))

    scorer.submit(job("same", champion_version="2"))  # the challenger is the champion: idle
    for request_id in ("r1", "r2", "r3", "r4", "r5"):
        scorer.submit(job(request_id))
    assert (scorer.queued, scorer.dropped) == (2, 3)
    text = generate_latest(ApiMetrics(_champions(settings), shadow=scorer).registry).decode()
    assert "modelcycle_shadow_requests_dropped_total 3.0" in text
    assert "modelcycle_shadow_queued_requests 2.0" in text

    scorer.start()
    _wait_for(lambda: scorer.worker_pid is not None, "the worker")
    worker = scorer.worker_pid
    scorer.stop()
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    assert logged.column("request_id").to_pylist() == ["r1"] * 3 + ["r2"] * 3
    assert (scorer.requests_scored, scorer.rows_scored, scorer.rows_written) == (2, 6, 6)
    assert (scorer.health.errors, scorer.restarts, scorer.lost) == (0, 0, 0)
    assert worker is not None and not _alive(worker)  # the worker ended with the API


def _champions(settings: Settings) -> ModelManager:
    return ModelManager(
        names=settings.model_names,
        alias=settings.serving_alias,
        source=RegistrySource(settings),
        cache=ArtifactCache(settings.resolved_serving_cache_dir),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/status").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    )


def test_batches_cross_the_pipe_as_frames_and_the_challenger_scores_them(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """300 requests (1-3 rows each; some carry the champion's parsed matrix as the route hands
    it, some only the body) are framed as the API sends them (MAX_BATCH_REQUESTS a frame), read
    back as the worker reads them, and scored: every row equal to the challenger's own ONNX
    score; one request whose row count disagrees fails alone, counted."""
    settings = _settings(trained_registry, shadow_alias, monkeypatch, tmp_path)
    name = trained_registry.classifier
    manager = _challenger(settings, name)
    features = manager.get(name).features
    scorer = BatchScorer(
        manager, PredictionLog(open_store(str(tmp_path / "lake")), table=SHADOW_TABLE), max_rows=9
    )
    rows = _feature_rows(trained_registry, list(features), n=40)
    challenger = _onnx_scores(trained_registry, client, name, "2", rows)  # row by row the same
    expected: dict[str, np.ndarray] = {}
    jobs = []
    for i in range(300):
        chunk = rows[i % 38 : i % 38 + 1 + i % 3]
        champion_rows = len(chunk) + (1 if i == 7 else 0)  # r007: a row count that disagrees
        reused = i % 2 == 1  # as the route hands it: the champion's parsed matrix
        jobs.append(
            ShadowJob(
                json.dumps({"instances": _as_json(chunk)}).encode(),
                (ChampionAnswer(name, "1", [0.5] * champion_rows),),
                f"r{i:03d}",
                datetime.now(UTC),
                matrix=chunk if reused else None,
                features=features if reused else (),
            )
        )
        if i != 7:
            expected[f"r{i:03d}"] = challenger[i % 38 : i % 38 + 1 + i % 3]
    for start in range(0, len(jobs), MAX_BATCH_REQUESTS):
        header, payload = encode_jobs(
            jobs[start : start + MAX_BATCH_REQUESTS], {name: features_digest(features)}
        )
        assert {job[-1][0] for job in json.loads(header)["jobs"]} == {"matrix", "raw"}
        stream = io.BytesIO()
        write_frame(stream, header, payload)
        stream.seek(0)
        frame = read_frame(stream)
        assert frame is not None and read_frame(stream) is None
        scorer.score(decode_jobs(*frame))
    scorer.log.flush()
    frames = -(-len(jobs) // MAX_BATCH_REQUESTS)
    assert (scorer.batches, scorer.requests_scored, scorer.health.errors) == (frames, 299, 1)
    assert "scored 2 rows, the champion v1 3" in str(scorer.health.last_error)
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    ids = logged.column("request_id").to_pylist()
    assert ids == [rid for rid in sorted(expected) for _ in expected[rid]]  # in request order
    scores = np.array(logged.column("score").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(scores, np.concatenate(list(expected.values())), atol=1e-6)
    assert set(logged.column("version").to_pylist()) == {"2"}


def test_requests_not_sampled_are_skipped_counted_and_not_dropped(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = _settings(
        trained_registry, shadow_alias, monkeypatch, tmp_path, serving_shadow_sample=0.0
    )
    name = trained_registry.classifier
    scorer = ShadowScorer(settings)
    _heard_of(scorer, name, "2", ("a", "b"))
    raw = json.dumps({"instances": [[0.0, 1.0], [1.0, 0.0]]}).encode()
    for request_id in ("r1", "r2", "r3"):
        scorer.submit(
            ShadowJob(raw, (ChampionAnswer(name, "1", [0.5, 0.5]),), request_id, datetime.now(UTC))
        )
    assert (scorer.queued, scorer.skipped, scorer.dropped) == (0, 3, 0)
    text = generate_latest(ApiMetrics(_champions(settings), shadow=scorer).registry).decode()
    assert "modelcycle_shadow_requests_skipped_total 3.0" in text
    assert "modelcycle_shadow_requests_dropped_total 0.0" in text
    scorer.start()
    scorer.stop()
    assert _lake_table(tmp_path / "lake", "shadow") is None


def test_a_killed_worker_is_restarted_shown_and_scores_again(
    shadow_env: dict[str, str],
    trained_registry: TrainedRegistry,
    server_log_dir: Path,
) -> None:
    """SIGKILL the shadow worker under a running API: the champion keeps answering, the death
    shows in status and metrics, a new worker starts and scores the next requests."""
    name = trained_registry.classifier
    with start_api(shadow_env, server_log_dir) as api:
        api.wait_ready()
        _wait_for(lambda: _models(api)["shadow"]["state"] == "scoring", "the challenger")
        rows = _feature_rows(trained_registry, _features(api, name), n=5)
        body = {"instances": _as_json(rows)}
        assert api.post(f"/v1/models/{name}/predict", body).ok
        _wait_for(lambda: _models(api)["shadow"]["rows_scored"] == 5, "shadow scores")
        first = _models(api)["shadow"]["worker_pid"]
        assert first is not None and first != api.pid
        assert _models(api)["shadow"]["worker_rss_bytes"] > 0
        os.kill(first, signal.SIGKILL)

        _wait_for(lambda: _models(api)["shadow"]["worker_pid"] not in (None, first), "a new worker")
        shadow = _models(api)["shadow"]
        assert shadow["worker_restarts"] == 1
        assert shadow["errors"] == 1
        assert shadow["last_error"] == f"shadow worker (pid {first}) was killed by SIGKILL"
        task = next(t for t in _models(api)["tasks"] if t["name"] == "shadow_scoring")
        assert (task["running"], task["errors"]) == (True, 1)
        assert requests.get(f"{api.url}/readyz", timeout=5).status_code == 200
        metrics = requests.get(f"{api.url}/metrics", timeout=5).text
        assert "modelcycle_shadow_worker_restarts_total 1.0" in metrics
        assert not _alive(first)

        answer = api.post(f"/v1/models/{name}/predict", body)  # the champion never stopped
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        _wait_for(lambda: _models(api)["shadow"]["rows_scored"] == 10, "the new worker's scores")
        assert _models(api)["shadow"]["requests_scored"] == 2


def test_a_frame_whose_payload_disagrees_with_its_requests_is_refused() -> None:
    """The worker trusts nothing it reads: a payload shorter or longer than its requests' data,
    or a stream cut inside a frame, is a FrameError (the worker ends and is restarted), never a
    request scored on the wrong bytes."""
    jobs = [
        ShadowJob(
            b'{"instances": [[1.0, 2.0]]}',
            (ChampionAnswer("m", "1", [0.5]),),
            f"r{i}",
            datetime.now(UTC),
        )
        for i in range(3)
    ]
    header, payload = encode_jobs(jobs, {})
    joined = b"".join(payload)
    assert [job.request_id for job in decode_jobs(json.loads(header), joined)] == ["r0", "r1", "r2"]
    for wrong in (joined[:-1], joined + b"x"):
        with pytest.raises(FrameError, match="frame payload holds"):
            decode_jobs(json.loads(header), wrong)
    stream = io.BytesIO()
    write_frame(stream, header, payload)
    with pytest.raises(FrameError, match="cut short"):
        read_frame(io.BytesIO(stream.getvalue()[:-5]))


def test_a_saturated_api_sends_one_request_in_ten_and_counts_the_rest_shed(
    trained_registry: TrainedRegistry,
    shadow_alias: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Above `serving_shadow_shed_above` cores of CPU use (here 0: any use), measured by the
    sender at its first batch, only every 10th request that follows is encoded and sent; the
    others are shed, counted, shown in /metrics."""
    settings, scorer, raw = _scorer_and_body(
        trained_registry, shadow_alias, monkeypatch, tmp_path, 1, serving_shadow_shed_above=0.0
    )
    name = trained_registry.classifier

    def submit(i: int) -> None:
        answer = ChampionAnswer(name, "1", [0.5])
        scorer.submit(ShadowJob(raw, (answer,), f"r{i:02d}", datetime.now(UTC)))

    submit(0)  # before any measurement: sent
    scorer.start()
    _wait_for(lambda: scorer.requests_scored == 1, "the first request scored")
    for i in range(1, 21):
        submit(i)
    scorer.stop()
    logged = _lake_table(tmp_path / "lake", "shadow")
    assert logged is not None
    assert logged.column("request_id").to_pylist() == ["r00", "r10", "r20"]
    assert (scorer.shed, scorer.dropped, scorer.requests_scored) == (18, 0, 3)
    text = generate_latest(ApiMetrics(_champions(settings), shadow=scorer).registry).decode()
    assert "modelcycle_shadow_requests_shed_total 18.0" in text
