"""The CLI's surface as a user meets it: --help at 80 columns, --version, completion, exit codes.

In-process (`invoke_cli`): the text is what is tested, not the process around it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import modelcycle.errors
import modelcycle.orchestration.stack
import modelcycle.store.database
from modelcycle.cli.failures import EXIT_CODES
from modelcycle.cli.main import _command
from modelcycle.settings import Settings
from modelcycle.store import open_store
from modelcycle.store.tables import AlertState
from tests.support.cli import invoke_cli

WIDTH = 80
# typer's own names of value types: what a value should never be called in --help
_PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path)[^>]*>|list\[")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MODELCYCLE_HOME": str(tmp_path / "home"), "COLUMNS": str(WIDTH)}


def _every_command() -> list[tuple[str, ...]]:
    commands: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        commands.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(_command(), ())
    return commands


@pytest.mark.parametrize("command", _every_command(), ids=lambda c: " ".join(c) or "modelcycle")
def test_every_help_fits_80_columns_and_names_its_values(
    command: tuple[str, ...], env: dict[str, str]
) -> None:
    result = invoke_cli(*command, "--help", env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, result.stdout
    assert not _PYTHON_TYPES.search(result.stdout), result.stdout  # not `--json <bool>`
    cut = [line for line in lines if line.endswith("...") and not line.startswith("Usage:")]
    assert not cut, result.stdout  # no command's summary cut short


def test_help_rewraps_sentences_and_keeps_defaults(env: dict[str, str]) -> None:
    result = invoke_cli("train", "--help", env=env)

    text = result.stdout
    flat = " ".join(text.split())
    assert "labels come from the maintenance ledger (raw area's maintenance.csv)" in flat
    description = text.split("Options:")[0].split("\n\n")[2]  # a paragraph of the docstring
    *inner, _last = description.splitlines()
    assert all(len(line) > WIDTH - 20 for line in inner), description  # filled, not ragged
    assert "[default: 42]" in text
    assert "MODELCYCLE_TRAINING_WINDOW_DAYS" in flat and "--window-days N" in text
    assert "--raw URL" in text and "--date YYYY-MM-DD" in text
    assert re.search(r"^  --json +Print", text, re.MULTILINE), text  # a flag, no value


def test_the_top_help_lists_exit_codes_version_and_completion(env: dict[str, str]) -> None:
    result = invoke_cli("--help", env=env)

    listed = {int(code) for code in re.findall(r"^    (\d+) ", result.stdout, re.MULTILINE)}
    assert listed == {code for code, _meaning in EXIT_CODES}
    assert {1, 2, 3, 4, 5, 6, 7, 8, 70, 130} <= listed
    for option in ("--version", "--install-completion", "--show-completion", "--verbose"):
        assert option in result.stdout


def test_every_error_class_has_its_exit_code_listed() -> None:
    listed = {code for code, _meaning in EXIT_CODES}
    classes = [modelcycle.errors.ModelcycleError]
    codes = set()
    while classes:
        error_class = classes.pop()
        codes.add(error_class.exit_code)
        classes.extend(error_class.__subclasses__())
    # imported so that their errors are subclasses too
    assert modelcycle.store.database and modelcycle.orchestration.stack
    assert {7, 8} <= codes
    assert codes <= listed


def test_version_and_completion_work(env: dict[str, str]) -> None:
    version = invoke_cli("--version", env=env)
    assert version.returncode == 0
    assert re.fullmatch(r"modelcycle \d+\.\d+\S*\n", version.stdout), version.stdout

    script = invoke_cli("--show-completion", "bash", env=env)
    assert script.returncode == 0
    assert "_modelcycle_completion" in script.stdout


def test_a_filter_by_model_is_called_model_everywhere(env: dict[str, str]) -> None:
    for command in (("models", "list"), ("monitor", "report")):
        text = invoke_cli(*command, "--help", env=env).stdout
        assert "--model NAME" in text and "--name" not in text, text

    new = invoke_cli("models", "list", "--model", "no-such-model", env=env)
    old = invoke_cli("models", "list", "--name", "no-such-model", env=env)
    # the old spelling still works, unadvertised: the same answer
    assert old.returncode == new.returncode == 5
    assert old.stderr == new.stderr and "no-such-model not found" in new.stderr


def _add_alerts(home: Path, count: int) -> None:
    store = open_store(Settings(home=home))
    start = datetime(2026, 1, 1, 6, tzinfo=UTC)
    try:
        with store.session() as session:
            for i in range(count):
                fired = start + timedelta(hours=i)
                session.add(
                    AlertState(
                        key=f"training_sla_missed:2026-01-{i + 1:02d}",
                        rule="training_sla",
                        kind="training_sla",
                        status="resolved" if i % 2 else "firing",
                        severity="warning",
                        summary=f"no training succeeded on 2026-01-{i + 1:02d} by 06:00 UTC, "
                        "so the models in production are a day older than they should be",
                        details={},
                        customer_id=None,
                        first_fired_at=fired,
                        last_seen_at=fired,
                        last_notified_at=fired,
                        resolved_at=fired + timedelta(hours=1) if i % 2 else None,
                    )
                )
    finally:
        store.close()


def test_alerts_list_is_readable_at_80_columns_newest_first(
    env: dict[str, str], tmp_path: Path
) -> None:
    _add_alerts(tmp_path / "home", 25)

    result = invoke_cli("alerts", "list", "--limit", "3", env=env)

    assert result.returncode == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads[:3] == [
        "firing   warning  2026-01-02 06:00Z  training_sla_missed:2026-01-25",
        "resolved warning  2026-01-02 05:00Z  training_sla_missed:2026-01-24",
        "firing   warning  2026-01-02 04:00Z  training_sla_missed:2026-01-23",
    ]
    assert "3 of 25 alerts shown" in heads[3]
    summaries = [line for line in result.stdout.splitlines() if line.startswith("    ")]
    assert len(summaries) == 3 and "a day older than they should be" in summaries[0]
    assert summaries[1].startswith("    resolved 2026-01-02 06:00Z: no training succeeded")
    assert all(len(head) <= WIDTH for head in heads)

    default = invoke_cli("alerts", "list", "--json", env=env)
    assert len(json.loads(default.stdout)) == 20  # a sensible default, not the whole history


def _commands_and_options() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", {})
        for name, sub in subs.items():
            walk(sub, (*path, name))
        if not subs:
            params = [p for p in getattr(command, "params", ()) if not p.hidden]
            options = [o for p in params for o in p.opts if o.startswith("--") and o != "--help"]
            found.append((" ".join(path), options))

    walk(_command(), ())
    return found


def test_the_readme_lists_every_command_with_its_options() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `modelcycle"))

    for command, options in _commands_and_options():
        words = command.split()
        # `modelcycle users list`, or after a slash in the same row: `users remove`, `key list`
        names = {f"modelcycle {command} ", f"`{command} ", f"`{' '.join(words[1:])} "}
        names = {name.replace("  ", " ") for name in names if len(name.strip(" `")) > 1}
        rows = [
            row for row in table.splitlines() if any(n in row.replace("`", " `") for n in names)
        ]
        assert rows, f"README's command table has no row for `{command}`"
        row = rows[0]
        missing = [option for option in options if option not in row]
        assert not missing, f"README's row for `{command}` misses {missing}"
    for option in ("--verbose", "--version", "--install-completion", "--show-completion"):
        assert option in table


def test_the_license_file_is_the_one_pyproject_names() -> None:
    root = Path(__file__).parents[2]
    assert 'license = { text = "Apache-2.0" }' in (root / "pyproject.toml").read_text()
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
