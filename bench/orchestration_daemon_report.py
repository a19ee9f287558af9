"""The judged part of the orchestration section: the daily job's run as the daemon launches it,
under the shipped in-process executor and under the multiprocess one, against the CLI floor and
`execute_in_process`, all measured in the same run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.orchestration_plan import STEP_LABELS, TARGET_OVERHEAD, TARGET_TOTAL_SECONDS
from bench.verdict import Target, Verdicts

SHIPPED = "in_process"


@dataclass(frozen=True)
class Phases:
    """A daemon-launched run, cut at its own events (seconds)."""

    total: float  # RUN_ENQUEUED → the run's end: what the schedule, sensors and backfills wait
    queued: float  # → RUN_DEQUEUED (or RUN_STARTING): the daemon's dequeue interval
    launched: float  # → RUN_START: a new process, imports, the job loaded
    before_steps: float  # → the first step's start
    steps: float  # first step start → last step end
    workers: float | None  # the steps' own process start-ups, summed (multiprocess only)
    after_steps: float  # last step end → the run's end
    launch_command: float  # `dagster job launch` itself, before RUN_ENQUEUED: not in total


def phases(run: dict[str, Any]) -> Phases:
    events, end = run["events"], run["end"]
    enqueued = events["RUN_ENQUEUED"]
    # the daemon takes the run off the queue and the launcher marks it STARTING at once
    dequeued = events.get("RUN_DEQUEUED", events.get("RUN_STARTING", enqueued))
    started = events.get("RUN_START", dequeued)
    starts = [s["start"] for s in run["steps"] if s["start"] is not None]
    ends = [s["end"] for s in run["steps"] if s["end"] is not None]
    first, last = (min(starts), max(ends)) if starts and ends else (started, started)
    workers = [s["worker"] for s in run["steps"] if s["worker"] is not None]
    return Phases(
        total=end - enqueued,
        queued=dequeued - enqueued,
        launched=started - dequeued,
        before_steps=first - started,
        steps=last - first,
        workers=sum(workers) if workers else None,
        after_steps=end - last,
        launch_command=run["launch_command"],
    )


def _row(name: str, run: dict[str, Any], p: Phases, cli_total: float) -> str:
    workers = "–" if p.workers is None else f"{p.workers:.1f}"
    return (
        f"| {name} | {run['status']} | **{p.total:.1f}** | {p.total / cli_total:.2f}× "
        f"| {p.queued:.1f} | {p.launched:.1f} | {p.before_steps:.1f} | {p.steps:.1f} "
        f"| {workers} | {p.after_steps:.1f} | {p.launch_command:.1f} |"
    )


def _step_rows(daemon: dict[str, dict[str, Any]]) -> str:
    order = [s["key"] for s in daemon[SHIPPED]["steps"]]
    by = {name: {s["key"]: s for s in run["steps"]} for name, run in daemon.items()}
    for run in daemon.values():
        order += [s["key"] for s in run["steps"] if s["key"] not in order]
    rows = []
    for key in order:
        cells = []
        for name in daemon:
            step = by[name].get(key)
            if step is None or step["start"] is None or step["end"] is None:
                cells.append("not run | ")
                continue
            worker = "–" if step["worker"] is None else f"{step['worker']:.1f}"
            cells.append(f"{step['end'] - step['start']:.1f} ({step['status']}) | {worker}")
        rows.append(f"| {STEP_LABELS.get(key, f'`{key}`')} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render_daemon(
    daemon: dict[str, dict[str, Any]],
    cli_total: float,
    in_process_total: float,
    verdicts: Verdicts,
) -> str:
    """The judged table: the shipped executor's daemon-launched run against its targets."""
    cut = {name: phases(run) for name, run in daemon.items()}
    shipped = cut[SHIPPED]
    total = verdicts.add(
        Target(
            "the day as the daemon launches it (in-process executor)",
            shipped.total,
            TARGET_TOTAL_SECONDS,
            " s",
            digits=1,
        )
    )
    overhead = verdicts.add(
        Target(
            "daemon-launched run / CLI − 1",
            (shipped.total / cli_total - 1) * 100,
            TARGET_OVERHEAD * 100,
            " %",
            digits=1,
        )
    )
    rows = "\n".join(
        _row(
            f"daemon, `{name}` executor" + (" (shipped)" if name == SHIPPED else ""),
            run,
            cut[name],
            cli_total,
        )
        for name, run in daemon.items()
    )
    names = list(daemon)
    step_head = " | ".join(f"`{n}` wall s | its worker start-up s" for n in names)
    comparison = ""
    if "multiprocess" in cut:
        other = cut["multiprocess"]
        comparison = (
            f"\n- **Executor**: the multiprocess executor took {other.total:.1f} s, "
            f"{other.total / shipped.total:.2f}× the in-process executor's {shipped.total:.1f} s"
            + (
                f"; its steps' own process start-ups (imports of Dagster, modelcycle, MLflow, "
                f"polars in each step's process) add up to {other.workers:.1f} s"
                if other.workers is not None
                else ""
            )
            + ". The daily job ships with the in-process executor."
        )
    failed = [name for name, run in daemon.items() if not run["success"]]
    incomplete = (
        f"\n**Daemon-launched run(s) did not succeed**: {', '.join(failed)}.\n" if failed else ""
    )
    return f"""### As the daemon launches it (judged)
{incomplete}
A real `dagster-daemon run` on the bench home's instance (the `dagster.yaml` and workspace of
`modelcycle up`: QueuedRunCoordinator, DefaultRunLauncher); the day's run submitted with
`dagster job launch --tags '{{"dagster/partition": …}}'`, which queues it as the schedule, the
sensors and backfills do; the daemon dequeues it and launches it in a new process. Timed from the
run's RUN_ENQUEUED event (the submission) to its end; the phases are the run's own events.
The launch command's own start-up (loading the code location to create the run) comes before
the submission and is shown apart: the schedule, sensors and backfills create the run inside the
daemon, which has the code location loaded.

| path | status | submission → end s | / CLI | queued s | launched s | before 1st step s \
| steps s | step workers s | after last step s | `dagster job launch` s |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| CLI, three commands (the floor) | exit codes | **{cli_total:.1f}** | 1.00× | | | | | | | |
| `execute_in_process` in one process (below) | | **{in_process_total:.1f}** \
| {in_process_total / cli_total:.2f}× | | | | | | | |
{rows}

- **The whole day as the daemon launches it: {shipped.total:.1f} s: {total.verdict}**
  (target: under {TARGET_TOTAL_SECONDS / 60:.0f} minutes).
- **Overhead against the CLI: {shipped.total / cli_total:.2f}×,
  {shipped.total / cli_total - 1:+.1%}: {overhead.verdict}** (target: under
  {TARGET_OVERHEAD:.0%}).{comparison}

| Dagster step | {step_head} |
|---|{"---:|---:|" * len(names)}
{_step_rows(daemon)}
"""
