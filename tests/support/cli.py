"""Run the modelcycle CLI the way a user does: a separate Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `python -m modelcycle ARGS` with `env` laid over ours; the caller checks the exit code.

    The interpreter is the test's own, so the CLI sees exactly the locked dependencies.
    """
    return subprocess.run(
        [sys.executable, "-m", "modelcycle", *args],
        env={**os.environ, **env},
        cwd=cwd,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
