"""The lake on `gs://`: a real GCS API server on loopback (gcp-storage-emulator), through the CLI.

GCS itself cannot run here; the emulator speaks its JSON API (a named stand-in for the managed
service), reached through MODELCYCLE_GCS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from gcsfs.core import GCSFileSystem

from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.cli import invoke_cli
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def gcs_emulator(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--default-bucket", "fleet", "--in-memory", "--quiet"]
    log = (tmp_path / "gcs.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/storage/v1/b", timeout=1).status_code < 500:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_ingest_reads_and_writes_gcs(tmp_path: Path, gcs_emulator: str) -> None:
    day = date(2026, 4, 1)
    simulate_fleet(FleetSpec(devices=5, sensors=8, days=1, start=day, seed=1), tmp_path / "raw")
    gcs = GCSFileSystem(endpoint_url=gcs_emulator, token="anon")
    for path in sorted((tmp_path / "raw" / day.isoformat()).iterdir()):
        gcs.put_file(str(path), f"fleet/raw/{day}/{path.name}")
    env = {
        "MODELCYCLE_HOME": str(tmp_path / "home"),
        "MODELCYCLE_GCS_ENDPOINT_URL": gcs_emulator,
        "MODELCYCLE_RAW_URL": "gs://fleet/raw",
        "MODELCYCLE_LAKE_URL": "gs://fleet/lake",
    }
    result = invoke_cli("ingest", "--date", day.isoformat(), "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["partition_url"] == f"gs://fleet/lake/readings/date={day}/part-0.parquet"
    assert report["rows_written"] > 5 * 1400
    gcs.invalidate_cache()
    assert gcs.exists(f"fleet/lake/readings/date={day}/part-0.parquet")
    assert gcs.exists(f"fleet/lake/reports/ingest/date={day}.json")
