"""The prediction log's writer outlives a failing lake, and its buffer stays bounded.

Real failures only: a GCS JSON-API server (gcp-storage-emulator) behind a proxy that answers a
server error, and a temporary folder that is removed under the writer.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from gcsfs.core import GCSFileSystem
from prometheus_client import generate_latest

from modelcycle.serving.background import BackgroundTasks
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.metrics import ApiMetrics
from modelcycle.serving.prediction_log import SHADOW_TABLE, PredictionBatch, PredictionLog
from modelcycle.storage import ObjectStore, open_store
from tests.serving.test_metrics_accuracy import NoRegistry
from tests.support.gcs import GCS_BUCKET, FaultyHttpProxy, start_gcs_emulator
from tests.support.servers import unique_name

WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_gcs_emulator(tmp_path_factory.mktemp("gcs-logs")) as url:
        yield url


@pytest.fixture
def faulty_gcs(gcs_emulator: str) -> Iterator[FaultyHttpProxy]:
    proxy = FaultyHttpProxy(gcs_emulator).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary folder, which a test may remove (as a tmp cleaner would)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def batch(request_id: str, rows: int = 1) -> PredictionBatch:
    return PredictionBatch(
        predicted_at=datetime.now(UTC),
        request_id=request_id,
        model="m",
        version="1",
        scores=[0.5] * rows,
    )


def logged_request_ids(read: Callable[[str], bytes], keys: list[str]) -> list[str]:
    ids: list[str] = []
    for key in keys:
        ids += pq.read_table(io.BytesIO(read(key))).column("request_id").to_pylist()
    return sorted(ids)


def lake_request_ids(lake: ObjectStore) -> list[str]:
    return logged_request_ids(lake.read_bytes, lake.glob("predictions/date=*/*.parquet"))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS:.0f} s: {what}")
        time.sleep(0.05)


def exposition(prediction_log: PredictionLog, background: BackgroundTasks) -> str:
    manager = ModelManager(
        names=("m",), alias="champion", source=NoRegistry(), cache=ArtifactCache(Path("unused"))
    )
    metrics = ApiMetrics(manager, background=background, prediction_log=prediction_log)
    return generate_latest(metrics.registry).decode()


def test_writer_outlives_a_gcs_server_error_and_writes_once_gcs_recovers(
    gcs_emulator: str, faulty_gcs: FaultyHttpProxy
) -> None:
    root = f"{GCS_BUCKET}/{unique_name('lake')}"
    lake = open_store(f"gs://{root}", gcs_endpoint_url=faulty_gcs.url)
    background = BackgroundTasks()
    prediction_log = PredictionLog(
        lake, flush_seconds=0.05, health=background.track("prediction_log")
    )
    prediction_log.start()
    try:
        # 507 is a server error gcsfs does not retry: it surfaces at once as its own HttpError.
        faulty_gcs.fail_with(507)
        prediction_log.record(batch("during-outage", rows=3))
        wait_until(lambda: faulty_gcs.failed_requests > 0, "a write reached the failing GCS")
        faulty_gcs.recover()
        prediction_log.record(batch("after-outage", rows=2))
        direct = GCSFileSystem(endpoint_url=gcs_emulator, token="anon")

        def written() -> list[str]:
            direct.invalidate_cache()
            keys = [str(k) for k in direct.glob(f"{root}/predictions/date=*/*.parquet")]
            return logged_request_ids(direct.cat_file, keys)

        wait_until(lambda: len(written()) == 5, "both requests' rows are in the lake")
    finally:
        prediction_log.stop()
    assert written() == ["after-outage"] * 2 + ["during-outage"] * 3
    health = prediction_log.health
    assert health.errors >= 1
    assert "HttpError" in str(health.last_error) and "507" in str(health.last_error)
    assert health.consecutive_failures == 0  # the last flush succeeded
    text = exposition(prediction_log, background)
    assert 'modelcycle_background_task_errors_total{task="prediction_log"}' in text
    assert "modelcycle_prediction_log_rows_written_total 5.0" in text
    assert "modelcycle_prediction_log_buffered_rows 0.0" in text


def test_a_removed_temp_folder_keeps_the_rows_for_the_next_flush(
    tmp_path: Path, temp_folder: Path
) -> None:
    lake = open_store(str(tmp_path / "lake"))
    prediction_log = PredictionLog(lake)
    prediction_log.record(batch("kept", rows=4))
    temp_folder.rmdir()
    prediction_log.flush()  # the writer thread's round: it must not raise
    assert prediction_log.buffered_rows == 4
    assert "FileNotFoundError" in str(prediction_log.health.last_error)
    assert lake_request_ids(lake) == []
    temp_folder.mkdir()
    prediction_log.flush()
    assert lake_request_ids(lake) == ["kept"] * 4
    assert (prediction_log.rows_written, prediction_log.buffered_rows) == (4, 0)


def test_a_full_buffer_drops_the_oldest_rows_and_counts_them(
    tmp_path: Path, temp_folder: Path
) -> None:
    lake = open_store(str(tmp_path / "lake"))
    background = BackgroundTasks()
    prediction_log = PredictionLog(
        lake, max_buffered_rows=10, health=background.track("prediction_log")
    )
    temp_folder.rmdir()  # every write fails until the folder is back
    for number in range(25):
        prediction_log.record(batch(f"r{number:02d}"))
    assert (prediction_log.buffered_rows, prediction_log.rows_dropped) == (10, 15)
    prediction_log.flush()
    prediction_log.record(batch("r25"))
    assert (prediction_log.buffered_rows, prediction_log.rows_dropped) == (10, 16)
    text = exposition(prediction_log, background)
    assert "modelcycle_prediction_log_rows_dropped_total 16.0" in text
    assert "modelcycle_prediction_log_buffered_rows 10.0" in text
    temp_folder.mkdir()
    prediction_log.flush()
    assert lake_request_ids(lake) == [f"r{number:02d}" for number in range(16, 26)]


def test_every_row_is_logged_as_it_was_answered(tmp_path: Path) -> None:
    """The flush builds its columns per batch and repeats them for the batch's rows: each row
    keeps its own request, time (to the microsecond), device, window and score, in order; the
    shadow log adds the champion's version and score of the same row."""
    at = datetime(2026, 3, 1, 12, 30, 15, 123457, tzinfo=UTC)
    windows = [datetime(2026, 3, 1, 10), datetime(2026, 3, 1, 11)]
    lake = open_store(str(tmp_path / "lake"))
    served = PredictionLog(lake)
    served.record_many(
        [
            PredictionBatch(at, "r1", "m", "3", [0.25]),
            PredictionBatch(at.replace(microsecond=999999), None, "m", "3", [0.5, 0.75, 1.0]),
            PredictionBatch(at, "r3", "m", "4", [0.125, 0.375], device_id="d1", windows=windows),
        ]
    )
    served.flush()
    [key] = lake.glob("predictions/date=2026-03-01/*.parquet")
    rows = pq.read_table(io.BytesIO(lake.read_bytes(key))).to_pylist()
    assert [(r["request_id"], r["version"], r["device_id"], r["score"]) for r in rows] == [
        ("r1", "3", None, 0.25),
        (None, "3", None, 0.5),
        (None, "3", None, 0.75),
        (None, "3", None, 1.0),
        ("r3", "4", "d1", 0.125),
        ("r3", "4", "d1", 0.375),
    ]
    assert [r["predicted_at"] for r in rows] == [at] + [at.replace(microsecond=999999)] * 3 + [
        at
    ] * 2
    assert [r["window_start"] for r in rows] == [None] * 4 + windows

    shadow = PredictionLog(lake, table=SHADOW_TABLE)
    shadow.record_many(
        [
            PredictionBatch(
                at, "r1", "m", "5", [0.3], champion_version="3", champion_scores=[0.25]
            ),
            PredictionBatch(
                at, "r2", "m", "5", [0.6, 0.7], champion_version="3", champion_scores=[0.5, 0.75]
            ),
        ]
    )
    shadow.flush()
    [key] = lake.glob("shadow/date=2026-03-01/*.parquet")
    rows = pq.read_table(io.BytesIO(lake.read_bytes(key))).to_pylist()
    assert [
        (r["request_id"], r["version"], r["champion_version"], r["champion_score"]) for r in rows
    ] == [("r1", "5", "3", 0.25), ("r2", "5", "3", 0.5), ("r2", "5", "3", 0.75)]
    assert [round(r["score"], 6) for r in rows] == [0.3, 0.6, 0.7]
