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
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.monitoring import (
    SIMULATE,
    Step,
    _clean_env,
    _cli,
    _ledger_kept_until,
    _python,
)
from bench.report import machine_line, write_section
from bench.workfolder import SETUP_FILE, add_work_arguments, work_folder

START = date(2026, 3, 2)
SEED = 7
TARGET_TOTAL_SECONDS = 600.0
TARGET_OVERHEAD = 0.10
JOB = "daily_lifecycle"

# The core functions the Dagster steps call, timed inside the run: (module, attribute, label).
# A wrapper replaces the module attribute the step looks up at call time; the modules are imported
# before the run, so import time is not counted in any step.
CORE_FUNCTIONS = [
    ("modelcycle.orchestration.assets", "ingest_day", "ingest"),
    ("modelcycle.orchestration.assets", "null_shares", "data_quality"),
    ("modelcycle.orchestration.assets", "judge_partition", "data_quality"),
    ("modelcycle.orchestration.assets", "build_day_features", "features"),
    ("modelcycle.training.recipe", "train_window", "train"),
    ("modelcycle.monitoring.challenge", "champion_on_rows", "metric_gate"),
    ("modelcycle.monitoring.daily", "score_day", "score"),
    ("modelcycle.monitoring.daily", "evaluate_day", "evaluate"),
    ("modelcycle.alerting.facts", "check_alerts", "alerts"),
]
# Dagster step key → (labels of its core work, labels of its checks).
STEP_WORK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "readings": (("ingest",), ("data_quality",)),
    "features": (("features",), ()),
    "models": (("train",), ("metric_gate",)),
    "scores": (("score",), ()),
    "evaluation": (("evaluate",), ()),
    "alerts": (("alerts",), ()),
}
# CLI command (step name) → the Dagster steps that do its work.
PAIRS: list[tuple[str, tuple[str, ...]]] = [
    ("ingest", ("readings",)),
    ("train", ("features", "models")),
    ("monitor daily", ("scores", "evaluation", "alerts")),
]
STEP_LABELS = {
    "readings": "`readings` (ingest + `data_quality` check)",
    "features": "`features`",
    "models": "`models` (train + `metric_gate` ×2)",
    "scores": "`scores`",
    "evaluation": "`evaluation`",
    "alerts": "`alerts`",
}

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


@dataclass(frozen=True)
class Plan:
    """The days of the bench: the measured day and the windows around it."""

    window: int

    @property
    def day(self) -> date:
        """The measured day: the champion's window (from START) lies before it."""
        return START + timedelta(days=self.window)

    @property
    def simulated(self) -> int:
        # the champion's window, the measured day, and one day for the ledger
        return self.window + 2

    @property
    def ingested(self) -> list[date]:
        return [START + timedelta(days=i) for i in range(self.window)]


def _default_window() -> int:
    from modelcycle.settings import Settings

    value = Settings.model_fields["training_window_days"].default
    assert isinstance(value, int)
    return value


def _env(home: Path, window: int) -> dict[str, str]:
    env = _clean_env(home)
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
    steps = [_python("simulate", SIMULATE, simulate_args, env, logs)]
    for day in plan.ingested:
        steps.append(
            _cli(f"ingest {day}", ["ingest", "--date", day.isoformat()], env, logs, check=True)
        )
    before = plan.day - timedelta(days=1)
    train = ["train", "--date", before.isoformat(), "--window-days", str(plan.window), "--json"]
    steps.append(_cli("train (champion)", train, env, logs, check=True))
    steps.append(_python("dagster instance", PREPARE_INSTANCE, [], env, logs))
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
        _cli("ingest", ["ingest", "--date", day, "--json"], env, logs, check=True),
        _cli(
            "train",
            ["train", "--date", day, "--window-days", str(plan.window), "--json"],
            env,
            logs,
            check=True,
        ),
        # exits 1 when a rule could not be evaluated or a channel failed: recorded, not fatal
        _cli(
            "monitor daily", ["monitor", "daily", "--date", day, "--json"], env, logs, check=False
        ),
    ]


def _run_dagster(plan: Plan, env: dict[str, str], logs: Path) -> tuple[Step, dict[str, Any]]:
    step = _python(
        "dagster daily_lifecycle",
        DAGSTER,
        [plan.day.isoformat(), json.dumps(CORE_FUNCTIONS), JOB],
        env,
        logs,
    )
    return step, json.loads(step.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_work_arguments(parser)
    parser.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="Training window (MODELCYCLE_TRAINING_WINDOW_DAYS); default: the settings' default.",
    )
    args = parser.parse_args()
    if args.window_days is None:
        args.window_days = _default_window()
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
    kept = _ledger_kept_until(home / "raw")
    labelled = kept is not None and kept >= datetime.combine(
        plan.day + timedelta(days=1), datetime.min.time()
    )
    if not labelled:
        print(f"warning: the ledger (kept until {kept}) does not cover {plan.day}")
    load_before = os.getloadavg()

    print(f"CLI, one process per command, day {plan.day}")
    _reset(home, plan.day)
    cli = _run_cli(plan, env, logs)

    print(f"Dagster, `{JOB}` for partition {plan.day}, execute_in_process in one process")
    _reset(home, plan.day)
    dagster, result = _run_dagster(plan, env, logs)
    load_after = os.getloadavg()

    markdown = _markdown(
        args, plan, setup, cli, dagster, result, labelled, (load_before[0], load_after[0])
    )
    if not args.no_docs:
        write_section("orchestration", markdown)
    print(markdown)


@dataclass(frozen=True)
class StepTime:
    """One Dagster step: wall time and what it was spent on."""

    key: str
    status: str
    wall: float
    core: float | None  # the step's own work in the core functions; None: not timed
    checks: float | None
    attempts: int

    @property
    def rest(self) -> float | None:
        if self.core is None or self.checks is None:
            return None
        return self.wall - self.core - self.checks


def _step_times(result: dict[str, Any]) -> dict[str, StepTime]:
    core: dict[str, float] = result["core"]
    patched = {label for _, _, label in CORE_FUNCTIONS} - {
        label for module, attr, label in CORE_FUNCTIONS if f"{module}.{attr}" in result["unpatched"]
    }

    def total(labels: tuple[str, ...]) -> float | None:
        if not all(label in patched for label in labels):
            return None
        return sum(core.get(label, 0.0) for label in labels)

    times = {}
    for step in result["steps"]:
        work, checks = STEP_WORK.get(step["key"], ((), ()))
        wall = (step["end"] or step["start"] or 0.0) - (step["start"] or 0.0)
        times[step["key"]] = StepTime(
            key=step["key"],
            status=str(step["status"]),
            wall=wall,
            core=total(work) if work else None,
            checks=total(checks),
            attempts=int(step["attempts"] or 1),
        )
    return times


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _pair_rows(cli: list[Step], times: dict[str, StepTime]) -> list[str]:
    rows = []
    for (name, keys), step in zip(PAIRS, cli, strict=True):
        parts = [times[k] for k in keys if k in times]
        missing = [k for k in keys if k not in times]
        label = " + ".join(STEP_LABELS[k] for k in keys)
        if missing:
            label += f" (not run: {', '.join(missing)})"
        rows.append(
            f"| `modelcycle {name}` | {step.seconds:.1f} | {step.cpu_seconds:.1f} | {label} "
            f"| {sum(p.wall for p in parts):.1f} | {_seconds(_sum([p.core for p in parts]))} "
            f"| {_seconds(_sum([p.checks for p in parts]))} "
            f"| {_seconds(_sum([p.rest for p in parts]))} |"
        )
    return rows


def _check_lines(result: dict[str, Any]) -> str:
    lines = [
        f"`{c['check']}` on `{c['asset']}`: {'passed' if c['passed'] else 'FAILED'}"
        f" ({c['description'] or 'no description'})"
        for c in result["checks"]
    ]
    return ";\n  ".join(lines) or "none evaluated"


def _versions(cli: list[Step], result: dict[str, Any]) -> str:
    try:
        trained = json.loads(cli[1].stdout)
        ours = ", ".join(f"{t['name']} v{t['version']}" for t in trained)
    except (ValueError, KeyError, TypeError):
        ours = "unknown (see logs/train.out)"
    theirs = ", ".join(
        f"{m['registered_model']} v{m['version']}"
        for m in result["materialized"].values()
        if "registered_model" in m
    )
    return f"the CLI registered {ours}; Dagster registered {theirs or 'nothing'}"


def _ingest_rows(cli: list[Step], result: dict[str, Any]) -> str:
    try:
        ours = f"{json.loads(cli[0].stdout)['rows_written']:,}"
    except (ValueError, KeyError, TypeError):
        ours = "unknown"
    theirs = result["materialized"].get("readings", {}).get("rows_written")
    written = "unknown" if theirs is None else f"{theirs:,}"
    return f"{ours} rows written by the CLI, {written} by Dagster"


def _complete(result: dict[str, Any], times: dict[str, StepTime]) -> list[str]:
    """Why the Dagster run did not do the whole day's work (empty: it did)."""
    problems = []
    if not result["success"]:
        problems.append(f"the run ended {result['status']}")
    for key in STEP_WORK:
        if key not in times:
            problems.append(f"step `{key}` did not run")
        elif times[key].status != "SUCCESS":
            problems.append(f"step `{key}` ended {times[key].status}")
    return problems


def _own_time(result: dict[str, Any], times: dict[str, StepTime], total: float) -> str:
    """What the Dagster process spent outside the core functions and the checks."""
    in_steps = _sum([t.rest for t in times.values()])
    between = result["run"] - sum(t.wall for t in times.values())
    startup = (
        "The Dagster process imports once where the CLI starts three processes: its start-up and "
        f"imports took {result['imports']:.1f} s, before the run (so the steps start without "
        "imports, while each CLI row holds its command's start-up)."
    )
    if in_steps is None:
        return startup
    own = in_steps + between + result["prepared"]
    return (
        f"Dagster's own time (neither core functions nor checks): {in_steps:.1f} s inside the "
        f"steps, {between:.1f} s between them, {result['prepared']:.1f} s to open the instance "
        f"and resolve the job: **{own:.1f} s, {own / total:.1%} of its total**.\n  " + startup
    )


def _setup_detail(setup: list[Step]) -> str:
    """`simulate 87 s, ingest of 7 days 120 s, …`: the setup's ingests on one line."""
    ingests = [s for s in setup if s.name.startswith("ingest ")]
    parts = [f"{s.name} {s.seconds:.0f} s" for s in setup if s not in ingests]
    if ingests:
        parts.insert(1, f"ingest of {len(ingests)} days {sum(s.seconds for s in ingests):.0f} s")
    return ", ".join(parts)


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _markdown(
    args: argparse.Namespace,
    plan: Plan,
    setup: list[Step],
    cli: list[Step],
    dagster: Step,
    result: dict[str, Any],
    labelled: bool,
    loads: tuple[float, float],
) -> str:
    times = _step_times(result)
    problems = _complete(result, times)
    cli_total = sum(s.seconds for s in cli)
    total = dagster.seconds
    overhead = total / cli_total - 1
    in_steps = sum(t.wall for t in times.values())
    checks = _sum([t.checks for t in times.values()])
    core = _sum([t.core for t in times.values()])
    outside = total - in_steps
    between = result["run"] - in_steps
    process = total - result["imports"] - result["prepared"] - result["run"]
    rows = "\n".join(_pair_rows(cli, times))
    step_rows = "\n".join(
        f"| {STEP_LABELS.get(t.key, f'`{t.key}`')} | {t.status} | {t.attempts} | {t.wall:.1f} "
        f"| {_seconds(t.core)} | {_seconds(t.checks)} | {_seconds(t.rest)} |"
        for t in times.values()
    )
    setup_detail = _setup_detail(setup)
    default = _default_window()
    window_text = (
        f"the default {plan.window}-day training window"
        if plan.window == default
        else f"a {plan.window}-day training window "
        f"(`MODELCYCLE_TRAINING_WINDOW_DAYS={plan.window}`; the default is {default})"
    )
    scale = (
        ""
        if (args.devices, args.sensors) == (1000, 100)
        else "\n**Not the reference scale**: the targets apply to 1000 × 100.\n"
    )
    incomplete = (
        f"\n**The Dagster run did not do the whole day**: {'; '.join(problems)}. "
        "The totals do not compare like for like.\n"
        if problems
        else ""
    )
    unpatched = (
        f"\nNot timed (not found in the code): {', '.join(result['unpatched'])}.\n"
        if result["unpatched"]
        else ""
    )
    no_checks = None if checks is None else (total - checks) / cli_total - 1
    no_checks_text = (
        ""
        if no_checks is None or checks is None
        else f"\n- Without the two checks the CLI does not run ({checks:.1f} s), Dagster's total "
        f"would be {total - checks:.1f} s, **{no_checks:+.1%}** against the CLI."
    )
    evaluated = (
        "Evaluation ran on both paths (the maintenance ledger covers the day)."
        if labelled
        else "The ledger does not cover the day: evaluation was skipped on both paths."
    )
    return f"""## Orchestration: the daily job through Dagster vs the same steps from the CLI

`make bench-orchestration`: {args.devices} devices × {args.sensors} sensors × 1440 minutes, the
day {plan.day}, with {window_text}; both models' champions were trained on the
{plan.window} days before. Measured {machine_line()}. 1-minute load average {loads[0]:.1f}
before the timed runs, {loads[1]:.1f} after (2 cores: above 2, other work competed with the bench).
{scale}{incomplete}{unpatched}
Setup, not in the result: {sum(s.seconds for s in setup):.0f} s ({setup_detail}).

Before each path the day's readings and features partitions are deleted (so ingest and the
features really run) and its raw logs are read once (same page cache for both). CLI = each
command its own process (`python -m modelcycle …`), wall clock, Python start-up and imports
included. Dagster = the `{JOB}` job, `execute_in_process(partition_key="{plan.day}")` against a
persistent SQLite instance (the `dagster.yaml` of `modelcycle up`), console logger at WARNING, in
one fresh Python process: its wall clock is the total. Step times are Dagster's step stats; "core"
is the time inside the same functions the CLI calls (`ingest_day`, `build_day_features`,
`train_window` (`connect_tracking` + `build_training_set` +
`train_models`), `score_day`, `evaluate_day`,
`check_alerts`), timed inside the run; "checks" is `data_quality` (null shares + verdict) and
`metric_gate` (the champion scored on the new version's held-out rows), which the CLI does not
run; "rest" is the remainder of the step (Dagster's events and their storage, the resource, the
monitoring store's training record).

| CLI command | CLI wall s | CLI CPU s | Dagster step(s) | Dagster wall s | core s | checks s \
| rest s |
|---|---:|---:|---|---:|---:|---:|---:|
{rows}
| Python start-up, imports | (in each row) | | outside the steps: start-up + imports \
{result["imports"]:.1f}, instance + job {result["prepared"]:.1f}, between steps \
{between:.1f}, process start, stats and exit {process:.1f} | {outside:.1f} | | | {outside:.1f} |
| **total** | **{cli_total:.1f}** | {sum(s.cpu_seconds for s in cli):.1f} | \
{dagster.cpu_seconds:.1f} s CPU | **{total:.1f}** | {_seconds(core)} | {_seconds(checks)} \
| {_seconds(None if core is None or checks is None else total - core - checks)} |

- **The whole day through Dagster: {total:.1f} s: {_verdict(total < TARGET_TOTAL_SECONDS)}**
  (target: under {TARGET_TOTAL_SECONDS / 60:.0f} minutes; the CLI path took {cli_total:.1f} s).
- **Orchestration overhead: Dagster / CLI = {total / cli_total:.2f}×, {overhead:+.1%}:
  {_verdict(overhead < TARGET_OVERHEAD)}** (target: under {TARGET_OVERHEAD:.0%}).{no_checks_text}
- {_own_time(result, times, total)}
- Checks: {_check_lines(result)}.
- Same work on both paths: {_ingest_rows(cli, result)}; {_versions(cli, result)}
  (new versions are `challenger`s; both paths scored with the champions).
  {evaluated}
  CLI exit codes {", ".join(str(s.exit_code) for s in cli)}; Dagster run {result["status"]}.

| Dagster step | status | attempts | wall s | core s | checks s | rest s |
|---|---|---:|---:|---:|---:|---:|
{step_rows}
"""


if __name__ == "__main__":
    main()
