"""Running the benchmarks' processes: wall time, CPU and peak memory of each, output kept."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    cpu_seconds: float
    peak_mib: float
    exit_code: int
    stdout: str


def clean_env(home: Path) -> dict[str, str]:
    """The caller's environment without its MODELCYCLE_* settings, pointed at the bench home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCYCLE_")}
    env["MODELCYCLE_HOME"] = str(home)
    env["MODELCYCLE_LOG_FORMAT"] = "json"
    return env


def run_step(name: str, argv: list[str], env: dict[str, str], logs: Path, *, check: bool) -> Step:
    """Run a process to its end: wall time and its own peak RSS; output kept in `logs`."""
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=logs)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    text = out_path.read_text(errors="replace")
    if check and code != 0:
        tail = err_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"step {name!r} failed with exit code {code}:\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"  {name}: {seconds:.1f} s, {cpu:.1f} s CPU "
        f"(exit {code}, peak {usage.ru_maxrss / 1024:,.0f} MiB)"
    )
    return Step(name, seconds, cpu, usage.ru_maxrss / 1024, code, text)


def cli_step(name: str, args: list[str], env: dict[str, str], logs: Path, *, check: bool) -> Step:
    return run_step(name, [sys.executable, "-m", "modelcycle", *args], env, logs, check=check)


def python_step(name: str, code: str, args: list[str], env: dict[str, str], logs: Path) -> Step:
    return run_step(name, [sys.executable, "-c", code, *args], env, logs, check=True)


def ledger_kept_until(raw: Path) -> datetime | None:
    with (raw / "maintenance.csv").open(newline="") as handle:
        stamps = [datetime.fromisoformat(row["confirmed_at"]) for row in csv.DictReader(handle)]
    return max(stamps) if stamps else None
