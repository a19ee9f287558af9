"""The lake and the raw area on a real S3 endpoint (moto's server), end to end through the CLI."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import s3fs

from modelcycle.errors import StorageError
from modelcycle.lake.ingest import ingest_day
from modelcycle.simulate import FleetSpec, simulate_fleet
from modelcycle.storage import open_store
from tests.lake.rawlogs import DAY, good_line, log_bytes, write_healthy_day
from tests.support.cli import invoke_cli
from tests.support.servers import MlflowServer

pytestmark = pytest.mark.slow

START = date(2026, 2, 1)
DAYS = 3


def test_ingest_and_train_with_raw_logs_and_lake_on_s3(
    tmp_path: Path,
    s3_environment: dict[str, str],
    s3_bucket: str,
    mlflow_sqlite_server: MlflowServer,
) -> None:
    simulate_fleet(
        FleetSpec(devices=25, sensors=10, days=DAYS, start=START, seed=5), tmp_path / "raw"
    )
    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_environment["AWS_ENDPOINT_URL"]})
    s3.put(str(tmp_path / "raw"), f"{s3_bucket}/raw", recursive=True)
    env = {
        **s3_environment,
        **mlflow_sqlite_server.env,
        "MODELCYCLE_HOME": str(tmp_path / "home"),
        "MODELCYCLE_RAW_URL": f"s3://{s3_bucket}/raw",
        "MODELCYCLE_LAKE_URL": f"s3://{s3_bucket}/lake",
        "MODELCYCLE_EXPERIMENT_NAME": "s3-lake",
        "MODELCYCLE_CLASSIFIER_MODEL_NAME": "s3-lake-classifier",
        "MODELCYCLE_ANOMALY_MODEL_NAME": "s3-lake-detector",
    }
    for offset in range(DAYS):
        day = (START + timedelta(days=offset)).isoformat()
        result = invoke_cli("ingest", "--date", day, "--json", env=env)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["rows_read"] == report["rows_written"] + report["rows_quarantined"]
        assert (
            report["partition_url"] == f"s3://{s3_bucket}/lake/readings/date={day}/part-0.parquet"
        )
        assert s3.exists(f"{s3_bucket}/lake/readings/date={day}/part-0.parquet")
        assert s3.exists(f"{s3_bucket}/lake/reports/ingest/date={day}.json")

    last = (START + timedelta(days=DAYS - 1)).isoformat()
    result = invoke_cli("train", "--date", last, "--window-days", str(DAYS), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert {v["name"] for v in json.loads(result.stdout)} == {
        "s3-lake-classifier",
        "s3-lake-detector",
    }
    assert s3.exists(f"{s3_bucket}/lake/features/date={last}/part-0.parquet")
    assert not (tmp_path / "home" / "lake").exists()  # nothing fell back to local disk


def test_crlf_and_gzipped_logs_on_s3_land_intact(
    tmp_path: Path, s3_environment: dict[str, str], s3_bucket: str
) -> None:
    """Remote raw files are downloaded first; their text variants are read like local ones."""
    endpoint = s3_environment["AWS_ENDPOINT_URL"]
    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    rows = {f"device-{i:04d}": [good_line(f"device-{i:04d}", m) for m in range(6)] for i in (0, 1)}
    day_key = f"{s3_bucket}/raw/{DAY.isoformat()}"
    s3.pipe(f"{day_key}/device-0000.csv", log_bytes(rows["device-0000"], newline="\r\n"))
    s3.pipe(f"{day_key}/device-0001.csv.gz", gzip.compress(log_bytes(rows["device-0001"])))
    report = ingest_day(
        DAY,
        raw=open_store(f"s3://{s3_bucket}/raw", s3_endpoint_url=endpoint),
        lake=open_store(f"s3://{s3_bucket}/lake", s3_endpoint_url=endpoint),
    )
    assert (report.rows_written, report.rows_quarantined, report.files_quarantined) == (12, 0, 0)
    assert report.file_variants == {"CRLF line endings": 1, "gzip": 1}
    assert report.lines_read == 14
    assert report.balanced


def test_missing_lake_bucket_fails_before_any_file_is_parsed(
    tmp_path: Path, s3_environment: dict[str, str]
) -> None:
    write_healthy_day(tmp_path / "raw", devices=2, minutes=5)
    lake = open_store("s3://no-such-lake/lake", s3_endpoint_url=s3_environment["AWS_ENDPOINT_URL"])
    parsed: list[int] = []
    with pytest.raises(StorageError, match="s3://no-such-lake/lake does not exist"):
        ingest_day(DAY, raw=open_store(str(tmp_path / "raw")), lake=lake, on_progress=parsed.append)
    assert parsed == []
