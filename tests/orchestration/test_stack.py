"""`modelcycle up` and `modelcycle backfill` as a user runs them: the real daemon runs the days."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.cli import run_cli
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

START = date(2026, 1, 1)
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    simulate_fleet(
        FleetSpec(devices=16, sensors=8, days=3, start=START, seed=3, customers=2),
        tmp_path / "raw",
    )
    env = {
        "MODELCYCLE_HOME": str(tmp_path),
        "MODELCYCLE_ORCHESTRATION_START": START.isoformat(),
        "MODELCYCLE_TRAINING_WINDOW_DAYS": "2",
    }
    ports = {"mlflow": free_port(), "dagster": free_port(), "api": free_port()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelcycle",
            "up",
            "--mlflow-port",
            str(ports["mlflow"]),
            "--dagster-port",
            str(ports["dagster"]),
            "--api-port",
            str(ports["api"]),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while _get(f"http://127.0.0.1:{ports['api']}/healthz") != 200:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(1)
        yield env, ports
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0
    for port in ports.values():  # Ctrl-C stopped every service
        assert _get(f"http://127.0.0.1:{port}/") == 0


def test_up_serves_every_service_and_a_backfill_runs_through_the_daemon(
    stack: tuple[dict[str, str], dict[str, int]], tmp_path: Path
) -> None:
    env, ports = stack
    assert _get(f"http://127.0.0.1:{ports['mlflow']}/health") == 200
    assert _get(f"http://127.0.0.1:{ports['dagster']}/server_info") == 200

    launched = run_cli("backfill", "--start", "2026-01-01", "--end", "2026-01-01", env=env)
    assert launched.returncode == 0, launched.stderr
    assert "backfill of 1 day(s)" in launched.stdout

    dagster_home = tmp_path / "dagster"
    deadline = time.monotonic() + 600
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while True:
            runs = instance.get_runs()
            statuses = {r.tags.get("dagster/partition"): r.status for r in runs}
            if statuses.get("2026-01-01") in FINISHED:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(3)
        # the daemon ran the queued day: ingest, features, training on the days in the lake,
        # the gate, scores, alerts
        assert statuses == {"2026-01-01": dg.DagsterRunStatus.SUCCESS}, statuses

    versions = run_cli(
        "models",
        "list",
        "--json",
        env={
            **env,
            "MODELCYCLE_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        },
    )
    assert versions.returncode == 0, versions.stderr
    assert {v["name"] for v in json.loads(versions.stdout)} == {
        "sensor-fault-classifier",
        "sensor-anomaly-detector",
    }


def test_backfill_refuses_days_it_cannot_run(tmp_path: Path) -> None:
    env = {"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_ORCHESTRATION_START": "2026-01-01"}
    backwards = run_cli("backfill", "--start", "2026-01-05", "--end", "2026-01-02", env=env)
    assert backwards.returncode == 2 and "is before --start" in backwards.stderr
    early = run_cli("backfill", "--start", "2025-12-30", "--end", "2026-01-02", env=env)
    assert early.returncode == 2 and "before the first partition" in early.stderr
