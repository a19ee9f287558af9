"""The daily job as the daemon launches it, for bench/orchestration.py.

A real `dagster-daemon run -w <workspace>` on the bench home's instance (the `dagster.yaml` and
`workspace.yaml` that `modelcycle up` prepares: the default QueuedRunCoordinator and
DefaultRunLauncher). The run for the day's partition is submitted with `dagster job launch`, which
queues it, as the schedule, the sensors and backfills do; the daemon dequeues it and the launcher
starts it in a new process through the daemon's code server; the run's steps then go through the
job's executor. Timed from the run's own events: queued (RUN_ENQUEUED → RUN_DEQUEUED, the
daemon's dequeue interval), launched (→ RUN_START: a new process, imports, the job loaded), the
steps (step stats; under the multiprocess executor each step's worker start-up is the time from
STEP_WORKER_STARTING to its STEP_START), and → RUN_SUCCESS.

The multiprocess variant loads bench/orchestration_location.py (the shipped definitions with the
other executor) from a second workspace file, under its own daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.orchestration_plan import JOB
from bench.steps import run_step

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 300.0
RUN_TIMEOUT_SECONDS = 1800.0
RUN_EVENTS = ("RUN_ENQUEUED", "RUN_DEQUEUED", "RUN_STARTING", "RUN_START")
END_EVENTS = ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED")
STEP_EVENTS = ("STEP_WORKER_STARTING", "STEP_START")


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def workspaces(dagster_home: Path) -> dict[str, Path]:
    """Executor → workspace file: the shipped one (in-process), and the bench's multiprocess one."""
    other = dagster_home / "workspace-multiprocess.yaml"
    location = {
        "module_name": "bench.orchestration_location",
        "location_name": "modelcycle_multiprocess",
        "working_directory": str(ROOT),
    }
    other.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    return {"in_process": dagster_home / "workspace.yaml", "multiprocess": other}


def _instance(dagster_home: Path) -> Any:
    import dagster as dg

    return dg.DagsterInstance.from_config(str(dagster_home))


@contextmanager
def running_daemon(
    dagster_home: Path, workspace: Path, env: dict[str, str], logs: Path, name: str
) -> Iterator[float]:
    """A `dagster-daemon` on the workspace, ready (its run queue heartbeating, so its code
    location is loaded); yields the seconds it took to be ready; stopped afterwards."""
    log = (logs / f"daemon-{name}.log").open("ab")
    began, since = time.perf_counter(), time.time()
    process = subprocess.Popen(
        [tool("dagster-daemon"), "run", "-w", str(workspace)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=logs,
        start_new_session=True,
    )
    try:
        with _instance(dagster_home) as instance:
            while True:
                beat = instance.get_daemon_heartbeats().get("QUEUED_RUN_COORDINATOR")
                if beat is not None and beat.timestamp > since:
                    break
                late = time.perf_counter() - began > READY_TIMEOUT_SECONDS
                if process.poll() is not None or late:
                    raise SystemExit(f"dagster-daemon ({name}) did not start; see {log.name}")
                time.sleep(0.5)
        yield time.perf_counter() - began
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def launch_and_wait(
    dagster_home: Path,
    workspace: Path,
    day: str,
    env: dict[str, str],
    logs: Path,
    name: str,
) -> dict[str, Any]:
    """Submit the day's run, wait for it to end; its phases, step times and outcome."""
    run_id = str(uuid.uuid4())
    submitted = time.time()
    launch = run_step(
        f"dagster job launch ({name})",
        [
            tool("dagster"),
            "job",
            "launch",
            "-w",
            str(workspace),
            "-j",
            JOB,
            "--tags",
            json.dumps({"dagster/partition": day}),
            "--run-id",
            run_id,
        ],
        env,
        logs,
        check=True,
    )
    with _instance(dagster_home) as instance:
        began = time.perf_counter()
        while True:
            run = instance.get_run_by_id(run_id)
            if run is not None and run.is_finished:
                break
            if time.perf_counter() - began > RUN_TIMEOUT_SECONDS:
                raise SystemExit(f"the {name} run {run_id} did not end in time")
            time.sleep(0.5)
        return _record(instance, run, submitted, launch.seconds, name)


def _record(
    instance: Any, run: Any, submitted: float, launch_seconds: float, name: str
) -> dict[str, Any]:
    from dagster import DagsterEventType

    wanted = {DagsterEventType[t] for t in (*RUN_EVENTS, *END_EVENTS, *STEP_EVENTS)}
    events: dict[str, float] = {}
    workers: dict[str, dict[str, float]] = {}
    for entry in instance.all_logs(run.run_id, of_type=wanted):
        kind = entry.dagster_event.event_type.name
        if kind in STEP_EVENTS:
            workers.setdefault(entry.step_key, {}).setdefault(kind, entry.timestamp)
        else:
            events.setdefault(kind, entry.timestamp)
    steps = [
        {
            "key": s.step_key,
            "status": s.status.value if s.status else None,
            "start": s.start_time,
            "end": s.end_time,
            "attempts": s.attempts,
            "worker": _worker_start(workers.get(s.step_key, {})),
        }
        for s in instance.get_run_step_stats(run.run_id)
    ]
    end = next((events[k] for k in END_EVENTS if k in events), None)
    return {
        "executor": name,
        "run_id": run.run_id,
        "status": run.status.value,
        "success": run.status.value == "SUCCESS",
        "submitted": submitted,
        "launch_command": launch_seconds,
        "events": events,
        "end": end,
        "steps": steps,
    }


def _worker_start(times: dict[str, float]) -> float | None:
    """A step's own process start-up (multiprocess executor); None in one process."""
    if "STEP_WORKER_STARTING" not in times or "STEP_START" not in times:
        return None
    return times["STEP_START"] - times["STEP_WORKER_STARTING"]
