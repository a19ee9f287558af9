"""`modelcycle up` and `modelcycle backfill` as a user runs them: the real daemon runs the days.

`up` runs in a process of its own (its services and Ctrl-C are under test); the demo that prepares
its state, `backfill` and `models list` run in the test's process (`invoke_cli`)."""

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

from tests.support.cli import invoke_cli
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
    """The demo's state (as `make demo` leaves it, on a smaller fleet), then `modelcycle up`."""
    env = {
        "MODELCYCLE_HOME": str(tmp_path),
        "MODELCYCLE_ORCHESTRATION_START": START.isoformat(),
        "MODELCYCLE_TRAINING_WINDOW_DAYS": "2",
    }
    demo = invoke_cli("demo", "--devices", "16", "--sensors", "8", "--days", "3", env=env)
    assert demo.returncode == 0, demo.stderr
    assert "3 daily runs through Dagster: 3 succeeded" in " ".join(demo.stdout.split())
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
            time.sleep(0.25)
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

    launched = invoke_cli("backfill", "--start", "2026-01-03", "--end", "2026-01-03", env=env)
    assert launched.returncode == 0, launched.stderr
    assert "backfill of 1 day(s)" in launched.stdout

    dagster_home = tmp_path / "dagster"
    deadline = time.monotonic() + 600
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        # the demo's runs are in the instance `up` serves: two days ingested, one trained
        demo_runs = {
            r.tags["dagster/partition"]: r.status
            for r in instance.get_runs()
            if "dagster/backfill" not in r.tags
        }
        assert demo_runs == {
            day: dg.DagsterRunStatus.SUCCESS for day in ("2026-01-01", "2026-01-02", "2026-01-03")
        }
        while True:
            runs = [r for r in instance.get_runs() if "dagster/backfill" in r.tags]
            statuses = {r.tags.get("dagster/partition"): r.status for r in runs}
            if statuses.get("2026-01-03") in FINISHED:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(0.5)
        # the daemon ran the queued day again: ingest, features, training on its window,
        # the gate, scores, alerts
        assert statuses == {"2026-01-03": dg.DagsterRunStatus.SUCCESS}, statuses

    versions = invoke_cli(
        "models",
        "list",
        "--json",
        env={
            **env,
            "MODELCYCLE_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        },
    )
    assert versions.returncode == 0, versions.stderr
    # the demo's version 1 of each model, and version 2 from the backfilled day
    assert {(v["name"], str(v["version"])) for v in json.loads(versions.stdout)} == {
        (name, version)
        for name in ("sensor-fault-classifier", "sensor-anomaly-detector")
        for version in ("1", "2")
    }


def test_backfill_refuses_days_it_cannot_run(tmp_path: Path) -> None:
    env = {"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_ORCHESTRATION_START": "2026-01-01"}
    backwards = invoke_cli("backfill", "--start", "2026-01-05", "--end", "2026-01-02", env=env)
    assert backwards.returncode == 2 and "is before --start" in backwards.stderr
    early = invoke_cli("backfill", "--start", "2025-12-30", "--end", "2026-01-02", env=env)
    assert early.returncode == 2 and "before the first partition" in early.stderr
