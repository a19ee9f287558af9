"""The whole daily job through Dagster, against the same day's steps run from the CLI.

Setup (timed, not part of the result): a fresh modelcycle home with MLflow on SQLite, a simulated
fleet covering the training window that ends with the measured day (plus the window before it,
for the champion, and one day after, so the maintenance ledger covers the measured day), the days
before the measured day ingested, both models trained on the window ending the day before (so
each has a champion for the gate and for scoring), and a Dagster instance (SQLite storage, the
`dagster.yaml` of `modelcycle up`) in the home.

Measured on one day, the same work twice (the day's readings and features are deleted before
each, so ingest and the features really run):

- the CLI, each command its own process, wall clock: `modelcycle ingest`, `modelcycle train`
  (the window ending with the day; builds the day's features), `modelcycle monitor daily`
  (score, evaluate, check the alert rules);
- Dagster: the `daily_lifecycle` job for the day's partition, `execute_in_process` against the
  persistent instance, in a fresh Python process whose wall time is the total; per-step times
  from the instance's step stats. The job also runs the blocking `data_quality` and `metric_gate`
  checks, which the CLI does not; the core functions of each step are timed inside the run, so
  the report shows what the steps' time is made of.

Overhead = Dagster total / CLI total − 1. Run with `make bench-orchestration`; results go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.monitoring import SIMULATE
from bench.orchestration_daemon import launch_and_wait, running_daemon, workspaces
from bench.orchestration_daemon_report import render_daemon
from bench.orchestration_plan import (
    CORE_FUNCTIONS,
    JOB,
    SEED,
    START,
    Plan,
    default_window,
)
from bench.orchestration_report import (
    render_markdown,
)
from bench.report import write_section
from bench.steps import Step, clean_env, cli_step, ledger_kept_until, python_step
from bench.verdict import Conditions, Verdicts
from bench.workfolder import SETUP_FILE, add_work_arguments, work_folder

PREPARE_INSTANCE = """
import dagster as dg
from modelcycle.orchestration.instance import prepare_instance
from modelcycle.settings import Settings
home, _ = prepare_instance(Settings())
instance = dg.DagsterInstance.from_config(str(home))
instance.get_runs(limit=1)  # creates the run storage
instance.dispose()
print(home)
"""

# The daily job for one partition, in a fresh process; the last stdout line is the JSON result.
DAGSTER = """
import time
started = time.perf_counter()
import importlib, json, sys
import dagster as dg
from modelcycle.orchestration.definitions import defs
from modelcycle.orchestration.instance import prepare_instance
from modelcycle.settings import Settings

core, unpatched = {}, []


def timed(module_name, attr, label):
    module = importlib.import_module(module_name)
    original = getattr(module, attr, None)
    if not callable(original):
        unpatched.append(f"{module_name}.{attr}")
        return

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            core[label] = core.get(label, 0.0) + time.perf_counter() - began

    setattr(module, attr, wrapper)


for module_name, attr, label in json.loads(sys.argv[2]):
    timed(module_name, attr, label)
imported = time.perf_counter() - started

began = time.perf_counter()
home, _ = prepare_instance(Settings())
instance = dg.DagsterInstance.from_config(str(home))
job = defs.resolve_job_def(sys.argv[3])
prepared = time.perf_counter() - began

began = time.perf_counter()
result = job.execute_in_process(
    partition_key=sys.argv[1],
    instance=instance,
    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    raise_on_error=False,
)
run_seconds = time.perf_counter() - began


def plain(metadata):
    out = {}
    for key, value in metadata.items():
        value = getattr(value, "value", value)
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


steps = [
    {"key": s.step_key, "status": s.status.value if s.status else None,
     "start": s.start_time, "end": s.end_time, "attempts": s.attempts}
    for s in instance.get_run_step_stats(result.run_id)
]
checks = [
    {"asset": e.asset_key.to_user_string(), "check": e.check_name, "passed": e.passed,
     "description": e.description}
    for e in result.get_asset_check_evaluations()
]
materialized = {
    e.asset_key.to_user_string(): plain(e.materialization.metadata)
    for e in result.get_asset_materialization_events()
}
status = result.dagster_run.status.value
instance.dispose()
print(json.dumps({"imports": imported, "prepared": prepared, "run": run_seconds,
                  "success": result.success, "status": status, "run_id": result.run_id,
                  "steps": steps, "core": core, "unpatched": unpatched, "checks": checks,
                  "materialized": materialized}))
"""


def _env(home: Path, window: int) -> dict[str, str]:
    env = clean_env(home)
    env["MODELCYCLE_TRAINING_WINDOW_DAYS"] = str(window)
    env["DAGSTER_HOME"] = str(home / "dagster")
    env["MODELCYCLE_DAGSTER_HOME"] = str(home / "dagster")
    return env


def _setup(
    args: argparse.Namespace, plan: Plan, home: Path, env: dict[str, str], logs: Path
) -> list[Step]:
    simulate_args = [
        str(home / "raw"),
        str(args.devices),
        str(args.sensors),
        str(plan.simulated),
        START.isoformat(),
        str(SEED),
    ]
    steps = [python_step("simulate", SIMULATE, simulate_args, env, logs)]
    for day in plan.ingested:
        steps.append(
            cli_step(f"ingest {day}", ["ingest", "--date", day.isoformat()], env, logs, check=True)
        )
    before = plan.day - timedelta(days=1)
    train = ["train", "--date", before.isoformat(), "--window-days", str(plan.window), "--json"]
    steps.append(cli_step("train (champion)", train, env, logs, check=True))
    steps.append(python_step("dagster instance", PREPARE_INSTANCE, [], env, logs))
    return steps


def _reset(home: Path, day: date) -> None:
    """The day's readings and features gone, as before the day's first run; raw logs read once.

    Reading the day's logs first gives both paths the same page cache to start from.
    """
    from modelcycle.lake import layout

    lake = home / "lake"
    shutil.rmtree(lake / Path(layout.readings_partition(day)).parent, ignore_errors=True)
    shutil.rmtree(lake / layout.features_folder(day), ignore_errors=True)
    for path in sorted((home / "raw" / layout.raw_day_folder(day)).iterdir()):
        with path.open("rb") as handle:
            while handle.read(1 << 20):
                pass


def _run_cli(plan: Plan, env: dict[str, str], logs: Path) -> list[Step]:
    day = plan.day.isoformat()
    return [
        cli_step("ingest", ["ingest", "--date", day, "--json"], env, logs, check=True),
        cli_step(
            "train",
            ["train", "--date", day, "--window-days", str(plan.window), "--json"],
            env,
            logs,
            check=True,
        ),
        # exits 1 when a rule could not be evaluated or a channel failed: recorded, not fatal
        cli_step(
            "monitor daily", ["monitor", "daily", "--date", day, "--json"], env, logs, check=False
        ),
    ]


def _run_dagster(plan: Plan, env: dict[str, str], logs: Path) -> tuple[Step, dict[str, Any]]:
    step = python_step(
        "dagster daily_lifecycle",
        DAGSTER,
        [plan.day.isoformat(), json.dumps(CORE_FUNCTIONS), JOB],
        env,
        logs,
    )
    return step, json.loads(step.stdout.strip().splitlines()[-1])


def _run_daemon(
    plan: Plan, env: dict[str, str], home: Path, logs: Path, executors: list[str]
) -> dict[str, dict[str, Any]]:
    """The day's run as the daemon launches it, once per executor, each under its own daemon
    (started and ready before the day is reset: its start-up is not the run's)."""
    dagster_home = home / "dagster"
    runs = {}
    for executor, workspace in workspaces(dagster_home).items():
        if executor not in executors:
            continue
        print(f"Dagster daemon launches `{JOB}` for {plan.day}, {executor} executor")
        with running_daemon(dagster_home, workspace, env, logs, executor) as ready:
            print(f"  daemon ready in {ready:.1f} s")
            _reset(home, plan.day)
            runs[executor] = launch_and_wait(
                dagster_home, workspace, plan.day.isoformat(), env, logs, executor
            )
        print(f"  run {runs[executor]['status']}")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_work_arguments(parser)
    parser.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="Training window (MODELCYCLE_TRAINING_WINDOW_DAYS); default: the settings' default.",
    )
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=["in_process", "multiprocess"],
        default=["in_process", "multiprocess"],
        help="The executors the daemon-launched run is measured with (in_process is judged).",
    )
    args = parser.parse_args()
    if "in_process" not in args.executors:
        parser.error("--executors must include in_process: it is the one judged")
    if args.window_days is None:
        args.window_days = default_window()
    with work_folder(args, "orchestration") as (work, reuse):
        print(
            f"work folder {work} ({args.devices} devices × {args.sensors} sensors, "
            f"{args.window_days}-day training window)"
        )
        _bench(args, work, _env(work / "home", args.window_days), reuse=reuse)


def _load_or_set_up(
    args: argparse.Namespace, plan: Plan, work: Path, env: dict[str, str], *, reuse: bool
) -> list[Step]:
    home, logs = work / "home", work / "logs"
    scale = {"devices": args.devices, "sensors": args.sensors, "window": plan.window}
    if reuse:
        saved = json.loads((work / SETUP_FILE).read_text())
        if {k: saved[k] for k in scale} != scale:
            raise SystemExit(f"{work} was set up for {saved}, not {scale}")
        print(f"reusing the setup in {work}")
        return [Step(**step) for step in saved["steps"]]
    print("setup (not part of the result)")
    setup = _setup(args, plan, home, env, logs)
    (work / SETUP_FILE).write_text(json.dumps({**scale, "steps": [asdict(s) for s in setup]}))
    return setup


def _bench(args: argparse.Namespace, work: Path, env: dict[str, str], *, reuse: bool) -> None:
    home, logs = work / "home", work / "logs"
    plan = Plan(args.window_days)
    setup = _load_or_set_up(args, plan, work, env, reuse=reuse)
    kept = ledger_kept_until(home / "raw")
    labelled = kept is not None and kept >= datetime.combine(
        plan.day + timedelta(days=1), datetime.min.time()
    )
    if not labelled:
        print(f"warning: the ledger (kept until {kept}) does not cover {plan.day}")
    conditions = Conditions()

    print(f"CLI, one process per command, day {plan.day}")
    _reset(home, plan.day)
    cli = _run_cli(plan, env, logs)

    print(f"Dagster, `{JOB}` for partition {plan.day}, execute_in_process in one process")
    _reset(home, plan.day)
    dagster, result = _run_dagster(plan, env, logs)

    daemon = _run_daemon(plan, env, home, logs, args.executors)
    conditions.finish()
    verdicts = Verdicts("orchestration")
    daemon_section = render_daemon(daemon, sum(s.seconds for s in cli), dagster.seconds, verdicts)
    markdown = render_markdown(
        args, plan, setup, cli, dagster, result, labelled, conditions, daemon_section
    )
    if not args.no_docs:
        write_section("orchestration", markdown)
    print(markdown)
    verdicts.finish(conditions)


if __name__ == "__main__":
    main()
