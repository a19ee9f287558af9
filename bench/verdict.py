"""Targets that judge themselves: every figure with a target says PASS or FAIL beside it.

A benchmark collects its targets in a `Verdicts`, renders them into its section of
docs/benchmarks.md together with the conditions of the run (commit, load average before and
after, computed rather than written by hand) and exits non-zero when one failed, so `make bench`
fails too. Absolute times on a shared 2-core machine move by 2-4x from day to day, which is why
most targets are also judged as a ratio to a floor measured in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / ".results"


@dataclass(frozen=True)
class Target:
    """One measured figure and the limit it must keep."""

    name: str
    value: float
    limit: float
    unit: str = ""
    higher_is_better: bool = False
    digits: int = 2

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def _number(self, value: float) -> str:
        return f"{value:,.{self.digits}f}{self.unit}"

    def describe(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{self._number(self.value)} (target {sign} {self._number(self.limit)})"


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit() -> str:
    """The commit the benchmark ran on, marked when the work tree had changes."""
    try:
        head = _git("rev-parse", "--short=10", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


@dataclass
class Conditions:
    """What the machine was doing around the timed part: the load average before and after."""

    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])
    load_after: float | None = None

    def finish(self) -> None:
        self.load_after = os.getloadavg()[0]

    def caveat(self) -> str:
        """One line computed from the load: whether other work competed with the bench."""
        after = self.load_after if self.load_after is not None else os.getloadavg()[0]
        busiest = max(self.load_before, after)
        loads = f"1-minute load average {self.load_before:.1f} before, {after:.1f} after"
        if busiest > self.cores:
            return (
                f"{loads} on {self.cores} cores: other work competed with the bench, so absolute "
                "times are inflated; the ratios to the floor measured in the same run are the "
                "figures to judge."
            )
        if busiest > self.cores / 2:
            return (
                f"{loads} on {self.cores} cores: some other work ran; absolute times may be "
                "somewhat inflated, ratios less so."
            )
        return f"{loads} on {self.cores} cores: a quiet machine."


@dataclass
class Verdicts:
    """A benchmark's targets, rendered as a table and recorded for `make bench`."""

    benchmark: str
    targets: list[Target] = field(default_factory=list)

    def add(self, target: Target) -> Target:
        self.targets.append(target)
        return target

    @property
    def failed(self) -> list[Target]:
        return [target for target in self.targets if not target.passed]

    def table(self) -> str:
        lines = ["| target | measured | verdict |", "|---|---:|:---:|"]
        for target in self.targets:
            lines.append(f"| {target.name} | {target.describe()} | **{target.verdict}** |")
        return "\n".join(lines)

    def print_summary(self) -> None:
        for target in self.targets:
            print(f"{target.verdict}  {self.benchmark}: {target.name}: {target.describe()}")

    def record(self, conditions: Conditions) -> None:
        """Keep the verdicts in bench/.results/<benchmark>.json, for the people and the Makefile."""
        RESULTS.mkdir(exist_ok=True)
        payload = {
            "benchmark": self.benchmark,
            "commit": commit(),
            "conditions": asdict(conditions),
            "targets": [{**asdict(t), "passed": t.passed} for t in self.targets],
        }
        path = RESULTS / f"{self.benchmark}.json"
        scratch = path.with_suffix(".json.tmp")
        scratch.write_text(json.dumps(payload, indent=2) + "\n")
        scratch.replace(path)

    def finish(self, conditions: Conditions) -> None:
        """Print, record and exit non-zero when a target failed."""
        self.print_summary()
        self.record(conditions)
        if self.failed:
            names = ", ".join(target.name for target in self.failed)
            raise SystemExit(f"{self.benchmark}: {len(self.failed)} target(s) failed: {names}")


def run_line(conditions: Conditions) -> str:
    """The line every section carries: commit and load, both measured."""
    return f"Commit {commit()}. {conditions.caveat()}"
