"""Bad input on the command line: one line naming the problem, a non-zero exit, no traceback.

The CLI runs in-process (`invoke_cli`): same command line, environment, output and exit code as a
child process, without its start-up cost; none of these tests is about the process itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml

import modelcycle.store.database
from tests.lake.rawlogs import DAY, write_healthy_day
from tests.support.cli import invoke_cli
from tests.support.monitored import MonitoredFleet, day
from tests.support.servers import free_port


def _assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *words: str
) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for word in words:
        assert word in error_lines[0], error_lines[0]


@pytest.fixture
def home_env(tmp_path: Path) -> dict[str, str]:
    return {"MODELCYCLE_HOME": str(tmp_path / "home"), "MODELCYCLE_LOG_LEVEL": "WARNING"}


@pytest.mark.parametrize("bad_date", ["2026-13-45", "yesterday", "2026-1-1"])
def test_malformed_date_is_rejected(home_env: dict[str, str], bad_date: str) -> None:
    result = invoke_cli("ingest", "--date", bad_date, env=home_env)
    _assert_one_line_error(result, 2, "--date", bad_date)


def test_missing_raw_folder_is_named(home_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke_cli(
        "ingest", "--date", "2026-03-01", "--raw", str(tmp_path / "nope"), env=home_env
    )
    _assert_one_line_error(result, 3, "no device logs for 2026-03-01", "nope")


def test_date_without_logs_is_named(home_env: dict[str, str], tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=1, minutes=5)
    result = invoke_cli(
        "ingest", "--date", "2026-03-02", "--raw", str(tmp_path / "raw"), env=home_env
    )
    _assert_one_line_error(result, 3, "no device logs for 2026-03-02")
    assert not (tmp_path / "home" / "lake" / "readings").exists()


def test_unsupported_url_scheme_is_rejected(home_env: dict[str, str]) -> None:
    result = invoke_cli("ingest", "--date", "2026-03-01", "--raw", "ftp://host/logs", env=home_env)
    _assert_one_line_error(result, 2, "ftp://host/logs")


def test_unreachable_tracking_server_fails_fast(home_env: dict[str, str]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = invoke_cli("models", "list", env={**home_env, "MODELCYCLE_TRACKING_URI": uri})
    _assert_one_line_error(result, 5, uri, "unreachable")
    assert time.monotonic() - started < 60  # a wrong URL must not hang for minutes


def test_training_before_any_ingest_says_so(home_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke_cli("train", "--date", "2026-03-01", env=home_env)
    _assert_one_line_error(result, 3, "no ingested days", "run ingest first")


def test_unreachable_s3_endpoint_is_named(home_env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {
        **home_env,
        "MODELCYCLE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = invoke_cli("ingest", "--date", "2026-03-01", "--raw", "s3://fleet/raw", env=env)
    _assert_one_line_error(result, 4, "s3://fleet/raw")


@pytest.fixture
def s3_with_auth(tmp_path: Path) -> Iterator[str]:
    """A moto server that checks credentials (IAM auth on from the first request)."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_bad_s3_credentials_are_named(home_env: dict[str, str], s3_with_auth: str) -> None:
    env = {
        **home_env,
        "MODELCYCLE_S3_ENDPOINT_URL": s3_with_auth,
        "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1",
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    result = invoke_cli("ingest", "--date", "2026-03-01", "--raw", "s3://fleet/raw", env=env)
    _assert_one_line_error(result, 4, "s3://fleet/raw")
    assert "wrong-secret" not in result.stderr


def test_ingest_prints_a_balanced_json_report(home_env: dict[str, str], tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=2, minutes=30)
    result = invoke_cli(
        "ingest", "--date", DAY.isoformat(), "--raw", str(tmp_path / "raw"), "--json", env=home_env
    )
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["rows_read"] == report["rows_written"] == 60
    assert report["rows_quarantined"] == 0


def test_help_explains_each_command(home_env: dict[str, str]) -> None:
    for command, phrase in [
        ("ingest", "quarantine"),
        ("train", "challenger"),
        ("simulate", "fault"),
        ("demo", "Simulate"),
    ]:
        result = invoke_cli(command, "--help", env=home_env)
        assert result.returncode == 0
        assert phrase in result.stdout, (command, result.stdout)


def test_a_folder_the_system_refuses_is_named_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("someone's file")
    url = f"sqlite:///{blocker / 'store' / 'modelcycle.db'}"
    env = {"MODELCYCLE_HOME": str(tmp_path / "home"), "MODELCYCLE_DATABASE_URL": url}
    result = invoke_cli("db", "current", env=env)
    _assert_one_line_error(result, 4, str(blocker / "store"), "Not a directory")

    verbose = invoke_cli("--verbose", "db", "current", env=env)
    assert verbose.returncode == 4
    assert "Traceback" in verbose.stderr and "NotADirectoryError" in verbose.stderr


def _fake_bug(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("fake bug: no such thing in modelcycle")


def test_a_bug_says_internal_error_and_where_its_traceback_is(
    home_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modelcycle.store.database, "schema_status", _fake_bug)
    result = invoke_cli("db", "current", env=home_env)
    assert result.returncode == 70, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("internal error:")]
    assert "RuntimeError: fake bug" in line and "--verbose" in line
    written = Path(line.split("traceback is in ")[1].split()[0])
    assert "Traceback (most recent call last)" in written.read_text()
    assert "fake bug" in written.read_text()
    written.unlink()

    verbose = invoke_cli("--verbose", "db", "current", env=home_env)
    assert verbose.returncode == 70
    assert "Traceback" in verbose.stderr and "fake bug" in verbose.stderr
    Path(verbose.stderr.split("traceback is in ")[1].split()[0]).unlink()


def test_an_unknown_log_level_is_named(home_env: dict[str, str]) -> None:
    result = invoke_cli("db", "current", env={**home_env, "MODELCYCLE_LOG_LEVEL": "LOUD"})
    _assert_one_line_error(result, 2, "MODELCYCLE_LOG_LEVEL", "LOUD", "DEBUG")


def test_a_lower_case_log_level_is_fine(home_env: dict[str, str]) -> None:
    result = invoke_cli("db", "current", env={**home_env, "MODELCYCLE_LOG_LEVEL": "warning"})
    assert result.returncode == 1, result.stderr  # the new store is empty: "out of date"
    assert "empty, out of date" in result.stdout


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_home_that_cannot_be_a_folder_is_named(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("not a folder")
    home = blocker if where == "a file" else blocker / "modelcycle"
    result = invoke_cli("db", "current", env={"MODELCYCLE_HOME": str(home)})
    _assert_one_line_error(result, 2, "MODELCYCLE_HOME", str(blocker), "not a folder")


SECRET = "s3cret-password"


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://modelcycle:{SECRET}@127.0.0.1/monitoring",  # mysqlclient is not installed
        f"postgresql+asyncpg://modelcycle:{SECRET}@127.0.0.1/monitoring",  # an asyncio driver
        f"mongodb://modelcycle:{SECRET}@127.0.0.1/monitoring",  # no such SQLAlchemy dialect
    ],
)
def test_a_database_url_whose_driver_is_missing_is_named(
    home_env: dict[str, str], url: str
) -> None:
    result = invoke_cli("db", "current", env={**home_env, "MODELCYCLE_DATABASE_URL": url})
    _assert_one_line_error(result, 2, "MODELCYCLE_DATABASE_URL", url.split(":")[0])
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is not None,
    reason="psycopg (SQLAlchemy's default PostgreSQL driver) is installed: the URL would work",
)
def test_a_dagster_postgres_url_without_its_driver_is_named(home_env: dict[str, str]) -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/dagster"
    env = {**home_env, "MODELCYCLE_DAGSTER_POSTGRES_URL": url}
    result = invoke_cli("backfill", "--start", "2026-01-01", "--end", "2026-01-01", env=env)
    _assert_one_line_error(result, 2, "MODELCYCLE_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://")
    assert SECRET not in result.stderr + result.stdout


def test_a_hand_edited_dagster_yaml_that_contradicts_the_settings_is_refused(
    home_env: dict[str, str], tmp_path: Path
) -> None:
    dagster_home = tmp_path / "home" / "dagster"
    dagster_home.mkdir(parents=True)
    edited = {"run_monitoring": {"enabled": True, "poll_interval_seconds": 1}}  # SQLite storage
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(edited))
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/dagster"
    env = {**home_env, "MODELCYCLE_DAGSTER_POSTGRES_URL": url}
    result = invoke_cli("backfill", "--start", "2026-01-01", "--end", "2026-01-01", env=env)
    _assert_one_line_error(
        result, 2, str(dagster_home / "dagster.yaml"), "MODELCYCLE_DAGSTER_POSTGRES_URL"
    )
    assert yaml.safe_load((dagster_home / "dagster.yaml").read_text()) == edited  # left alone


@pytest.mark.parametrize("where", ["an existing file", "under a file"])
def test_simulate_into_a_file_is_refused(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("someone's file")
    out = blocker if where == "an existing file" else blocker / "fleet"
    result = invoke_cli(
        "simulate", "--out", str(out), "--devices", "1", "--sensors", "8",
        env={"MODELCYCLE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    _assert_one_line_error(result, 2, "--out", str(blocker))
    assert blocker.read_text() == "someone's file"


def _corrupt_readings(lake: Path, day_: str, how: str) -> Path:
    partition = lake / "readings" / f"date={day_}" / "part-0.parquet"
    partition.parent.mkdir(parents=True)
    if how == "garbage":
        partition.write_bytes(b"\x00garbage, not Parquet\n" * 200)
    else:  # a Parquet file cut short, as by a full disk or an interrupted copy
        table = pa.table({"device_id": ["device-0000"] * 1000, "s000": [1.0] * 1000})
        pq.write_table(table, partition)
        partition.write_bytes(partition.read_bytes()[:-100])
    return partition


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_training_on_a_corrupted_readings_partition_names_it(
    home_env: dict[str, str], tmp_path: Path, how: str
) -> None:
    partition = _corrupt_readings(tmp_path / "home" / "lake", "2026-03-01", how)
    result = invoke_cli("train", "--date", "2026-03-01", "--window-days", "1", env=home_env)
    _assert_one_line_error(result, 4, str(partition), "re-ingest")


@pytest.mark.slow
def test_scoring_a_corrupted_readings_partition_names_it(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    partition = _corrupt_readings(lake, str(day(5)), "garbage")
    env = {**fleet_env, "MODELCYCLE_LAKE_URL": str(lake), "MODELCYCLE_LOG_LEVEL": "WARNING"}
    result = invoke_cli("score", "--date", str(day(5)), env=env)
    _assert_one_line_error(result, 4, str(partition), "re-ingest")
