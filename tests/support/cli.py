"""Run the modelcycle CLI the way a user does: in a child process, or in this one when cheaper.

`run_cli` starts `python -m modelcycle`, for tests about the process itself (exit codes through the
console script, signals, servers). `invoke_cli` runs the same command line in the test's process,
with the same environment overlay and the same captured stdout, stderr and exit code, without
paying for a fresh interpreter and its imports.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import structlog

_ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")


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


def invoke_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `modelcycle ARGS` in this process with `env` laid over ours, as `run_cli` would."""
    from modelcycle.cli.main import execute

    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        logging_restored(),
        mlflow_globals_restored(),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        for name, value in env.items():
            patch.setenv(name, value)
        code = execute(args)
    # a terminal running `pytest -s` gives rich's consoles colours; a pipe would not
    return subprocess.CompletedProcess(
        ["modelcycle", *args],
        code,
        _ANSI_STYLE.sub("", out.getvalue()),
        _ANSI_STYLE.sub("", err.getvalue()),
    )


@contextmanager
def logging_restored() -> Iterator[None]:
    """The CLI configures logging for its process; give the test's configuration back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog_config = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**structlog_config)


_MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_MLFLOW_GLOBALS = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
    ("mlflow.tracking.fluent", "_active_experiment_id"),
)


def _mlflow_globals() -> list[Any]:
    """MLflow's process-wide tracking URI, registry URI and active experiment (None: unset or
    MLflow not imported yet)."""
    return [getattr(sys.modules.get(module), name, None) for module, name in _MLFLOW_GLOBALS]


@contextmanager
def mlflow_globals_restored() -> Iterator[None]:
    """A command that trains points MLflow's process-wide URIs (and their environment variables)
    at its server, as it should in its own process; give the test's back after, so a later test's
    fluent `mlflow` calls go where its own environment says."""
    saved = _mlflow_globals()
    saved_env = {name: os.environ.get(name) for name in _MLFLOW_URI_VARIABLES}
    try:
        yield
    finally:
        tracking = sys.modules.get("mlflow.tracking._tracking_service.utils")
        if tracking is not None and tracking._tracking_uri != saved[0]:
            tracking.set_tracking_uri(saved[0])  # also resets the tracer that holds the URI
        for (module, name), value in zip(_MLFLOW_GLOBALS, saved, strict=True):
            if module in sys.modules:
                setattr(sys.modules[module], name, value)
        for variable, value in saved_env.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
