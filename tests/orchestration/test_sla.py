"""The daemon-driven path with the real Dagster daemon: the log sensor starts a day's run, run
monitoring stops it past its maximum run time, the failure sensor raises `training_sla_missed`
(not `training_failed`), and the daemon retries the run that died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from modelcycle.orchestration.instance import instance_config, prepare_instance
from modelcycle.settings import Settings
from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.receivers import HttpReceiver

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 1, 1)
MAX_RUNTIME_SECONDS = 20


def _dagster_home(home: Path) -> Path:
    """dagster.yaml as `modelcycle up` writes it (run monitoring polled every second here),
    and a workspace that loads the hanging-training location."""
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    config = instance_config(Settings())  # SQLite storage in the folder
    config["run_monitoring"] = {**config["run_monitoring"], "poll_interval_seconds": 1}  # type: ignore[dict-item]
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    workspace = {
        "load_from": [
            {
                "python_module": {
                    "module_name": "tests.orchestration.slow_training_location",
                    "location_name": "modelcycle",
                    "working_directory": str(REPO),
                }
            }
        ]
    }
    (dagster_home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    prepare_instance(Settings(dagster_home=dagster_home))  # keeps both files; creates storage
    return dagster_home


def test_a_sensor_started_run_past_its_maximum_run_time_raises_the_sla_alert_and_is_retried(
    tmp_path: Path,
) -> None:
    simulate_fleet(FleetSpec(devices=12, sensors=8, days=1, start=DAY, seed=5), tmp_path / "raw")
    with HttpReceiver() as receiver:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            yaml.safe_dump(
                {
                    "channels": {"ops": {"type": "webhook", "url": receiver.url}},
                    "rules": {
                        # the deadline is late on purpose: only the run time can fire this one
                        "training-sla": {"type": "training_sla_missed", "deadline": "23:59"},
                        "training-failed": {"type": "training_failed"},
                    },
                }
            )
        )
        env = {
            "MODELCYCLE_HOME": str(tmp_path),
            "MODELCYCLE_ORCHESTRATION_START": DAY.isoformat(),
            "MODELCYCLE_TRAINING_WINDOW_DAYS": "1",
            "MODELCYCLE_TRAINING_MAX_RUNTIME_SECONDS": str(MAX_RUNTIME_SECONDS),
            "MODELCYCLE_ALERT_RULES": str(rules),
        }
        dagster_home = _dagster_home(tmp_path)
        workspace = dagster_home / "workspace.yaml"
        dagster = str(Path(sys.executable).parent / "dagster")
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
            env={**os.environ, **env, "DAGSTER_HOME": str(dagster_home)},
            cwd=REPO,
            stdout=(tmp_path / "daemon.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # the day's logs are complete: the sensor, once on, starts its run
            started = subprocess.run(
                [dagster, "sensor", "start", "complete_log_days", "-w", str(workspace)],
                env={**os.environ, **env, "DAGSTER_HOME": str(dagster_home)},
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert started.returncode == 0, started.stderr
            # run monitoring stops the run at 20 s; the failure sensor ticks every 30 s
            alerts = receiver.wait_for(1, timeout=240)
            runs = _wait_for_retry(dagster_home)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

    body = orjson.loads(alerts[0].body)
    assert body["event"] == "firing"
    assert body["kind"] == "training_sla_missed", body["summary"]  # a failure says why
    assert body["details"]["day"] == DAY.isoformat()
    assert f"Exceeded maximum runtime of {MAX_RUNTIME_SECONDS} seconds" in body["summary"]
    assert [orjson.loads(r.body)["kind"] for r in receiver.requests] == ["training_sla_missed"]

    first, retry = runs
    assert first.tags["dagster/sensor_name"] == "complete_log_days"
    assert first.status == dg.DagsterRunStatus.FAILURE
    # the run that died is retried by the daemon (run_retries), and the SLA was alerted once
    assert retry.tags["dagster/parent_run_id"] == first.run_id


def _wait_for_retry(dagster_home: Path) -> list[dg.DagsterRun]:
    """The day's first run and the daemon's retry of it, oldest first."""
    deadline = time.monotonic() + 180
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while True:
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": str(DAY)}))
            if len(runs) >= 2:
                return list(reversed(runs))[:2]
            assert time.monotonic() < deadline, [r.status for r in runs]
            time.sleep(2)
