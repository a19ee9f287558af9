"""Shared by the deployment tests: the repository root, a mutable copy of its deployment files,
and the external tools (kubectl, terraform, checkov) found or reported missing in one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a copy needs for the checks: the deployment files and the rule they share.
DEPLOYMENT_FILES = ("Dockerfile", ".dockerignore", "deploy", ".github")


def tool(name: str) -> str:
    """An external tool: on PATH, or (checkov) installed by `make tools` into .tools/bin."""
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".tools" / "bin"))
    if found is None:
        pytest.fail(f"{name} is not installed: `make tools` installs what the tests need")
    return found


def run_tool(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a tool; the caller checks the exit code and output."""
    return subprocess.run(
        [tool(args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(cwd or ROOT),
            # checkov: no call home for its guideline links (no network at test time)
            "BC_SKIP_MAPPING": "TRUE",
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
            "TF_IN_AUTOMATION": "1",
        },
    )


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The deployment files in a temporary folder, for a test to break one of them."""
    for name in DEPLOYMENT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns(".terraform*"))
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path
