"""The image's one entry point: every `modelcycle` command answers `--help` on this machine, and
the `service` commands become the real MLflow and Dagster servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcycle.cli.main import _command
from tests.deploy.commands import unknown_modelcycle_command
from tests.support.cli import invoke_cli, run_cli


def _leaf_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(_command(), [])
    return found


def test_every_command_answers_help(tmp_path: Path) -> None:
    """It prints usage and exits 0 for each of the CLI's commands, `service` ones included."""
    commands = _leaf_commands()
    assert ["service", "mlflow"] in commands and ["service", "dagster-daemon"] in commands
    for path in commands:
        result = invoke_cli(*path, "--help", env={"MODELCYCLE_HOME": str(tmp_path / "home")})
        assert result.returncode == 0, (path, result.stderr)
        assert f"Usage: modelcycle {' '.join(path)}" in result.stdout


def test_a_deployment_command_that_does_not_exist_is_named() -> None:
    assert (
        unknown_modelcycle_command(["modelcycle", "service", "mlflow", "--host", "0.0.0.0"]) is None
    )
    assert "no command 'airflow'" in str(unknown_modelcycle_command(["modelcycle", "airflow"]))
    assert "--bogus" in str(unknown_modelcycle_command(["modelcycle", "serve", "--bogus"]))
    assert "entry point" in str(unknown_modelcycle_command(["mlflow", "server"]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("service", "real_usage"),
    [
        ("mlflow", "mlflow server [OPTIONS]"),
        ("dagster-code-server", "dagster code-server start [OPTIONS]"),
        ("dagster-webserver", "dagster-webserver [OPTIONS]"),
        ("dagster-daemon", "dagster-daemon run [OPTIONS]"),
    ],
)
def test_service_commands_become_the_real_server(
    service: str, real_usage: str, tmp_path: Path
) -> None:
    """`modelcycle service X -- --help` is answered by the server it starts (exec), so the
    container's process is the server itself, with the same environment."""
    env = {"MODELCYCLE_HOME": str(tmp_path / "home")}
    result = run_cli("service", service, "--", "--help", env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    assert real_usage in result.stdout


def test_the_console_script_is_the_entry_point() -> None:
    """The image runs `modelcycle` from its PATH: the console script the project declares."""
    script = Path(sys.executable).with_name("modelcycle")
    result = subprocess.run(
        [str(script), "service", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for name in ("mlflow", "dagster-webserver", "dagster-daemon", "dagster-code-server"):
        assert name in result.stdout
