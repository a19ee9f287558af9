"""The training SLA with the real Dagster daemon: a run past its maximum run time is stopped by
run monitoring, and the failure sensor raises `training_sla_missed` (not `training_failed`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from modelcycle.orchestration.instance import instance_config
from modelcycle.settings import Settings
from modelcycle.simulate import FleetSpec, simulate_fleet
from tests.support.cli import run_cli
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
    return dagster_home


def test_a_run_past_its_maximum_run_time_is_stopped_and_raises_the_sla_alert(
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
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-w",
                str(dagster_home / "workspace.yaml"),
            ],
            env={**os.environ, **env, "DAGSTER_HOME": str(dagster_home)},
            cwd=REPO,
            stdout=(tmp_path / "daemon.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            launched = run_cli("backfill", "--start", str(DAY), "--end", str(DAY), env=env)
            assert launched.returncode == 0, launched.stderr
            # run monitoring stops the run at 20 s; the failure sensor ticks every 30 s
            alerts = receiver.wait_for(1, timeout=240)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

    body = orjson.loads(alerts[0].body)
    assert body["event"] == "firing"
    assert body["kind"] == "training_sla_missed"
    assert body["details"]["day"] == DAY.isoformat()
    assert f"Exceeded maximum runtime of {MAX_RUNTIME_SECONDS} seconds" in body["summary"]
    assert [orjson.loads(r.body)["kind"] for r in receiver.requests] == ["training_sla_missed"]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        first = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": str(DAY)}))[-1]
        assert first.status == dg.DagsterRunStatus.FAILURE
