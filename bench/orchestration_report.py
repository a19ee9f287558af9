"""The section bench/orchestration.py writes into docs/benchmarks.md: each step's time through the
CLI and through Dagster, what Dagster's own share was; the judged daemon-launched part comes from
bench/orchestration_daemon_report.py."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from bench.orchestration_plan import (
    CORE_FUNCTIONS,
    JOB,
    PAIRS,
    STEP_LABELS,
    STEP_WORK,
    Plan,
    default_window,
)
from bench.report import machine_line
from bench.steps import Step
from bench.verdict import Conditions, run_line


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


def render_markdown(
    args: argparse.Namespace,
    plan: Plan,
    setup: list[Step],
    cli: list[Step],
    dagster: Step,
    result: dict[str, Any],
    labelled: bool,
    conditions: Conditions,
    daemon_section: str,
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
    default = default_window()
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
{plan.window} days before. Measured {machine_line()}.
{run_line(conditions)}
{scale}{incomplete}{unpatched}
Setup, not in the result: {sum(s.seconds for s in setup):.0f} s ({setup_detail}).

Before each path the day's readings and features partitions are deleted (so ingest and the
features really run) and its raw logs are read once (same page cache for both). CLI = each
command its own process (`python -m modelcycle …`), wall clock, Python start-up and imports
included: the floor every Dagster path is compared with.

{daemon_section}
### `execute_in_process`, step by step (not judged)

The `{JOB}` job, `execute_in_process(partition_key="{plan.day}")` against a
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

- The whole day in one process: {total:.1f} s, {total / cli_total:.2f}× the CLI's
  {cli_total:.1f} s ({overhead:+.1%}); what the daemon adds to it is in the table
  above.{no_checks_text}
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
