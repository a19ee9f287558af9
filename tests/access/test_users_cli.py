"""`modelcycle users`: what an admin types to add people, give roles and hand out API keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import invoke_cli
from tests.support.database import stored_text


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_LOG_LEVEL": "WARNING"}


def _ok(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = invoke_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: ")
    for word in words:
        assert word in line, line
    return line


def test_an_admin_adds_a_user_hands_out_a_key_revokes_it_and_removes_the_user(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert _ok("users", "add", "alice", "--role", "operator", env=env).stdout.strip() == (
        "added alice (operator)"
    )
    _ok("users", "add", "carol", "--customer", "c-07", env=env)
    changed = _ok("users", "set-role", "alice", "approver", env=env)
    assert changed.stdout.strip() == "alice: operator → approver"

    created = _ok("users", "key", "create", "alice", "--label", "release bot", env=env)
    key = created.stdout.strip()
    assert key.startswith("mc_") and "\n" not in key  # the key alone, for $(...)
    assert "shown this once" in created.stderr and key[:8] in created.stderr
    assert key not in created.stderr
    assert key not in stored_text(f"sqlite:///{tmp_path / 'modelcycle.db'}")

    users = json.loads(_ok("users", "list", "--json", env=env).stdout)
    assert [(u["name"], u["role"], u["customer_id"], u["active_keys"]) for u in users] == [
        ("alice", "approver", None, 1),
        ("carol", "viewer", "c-07", 0),
    ]
    (listed,) = json.loads(_ok("users", "key", "list", "alice", "--json", env=env).stdout)
    assert listed["prefix"] == key[:8] and listed["label"] == "release bot"
    assert key not in _ok("users", "key", "list", env=env).stdout

    revoked = _ok("users", "key", "revoke", key[:8], env=env)
    assert revoked.stdout.strip() == f"revoked API key {listed['id']} ({key[:8]}…, alice)"
    assert json.loads(_ok("users", "key", "list", "--json", env=env).stdout) == []
    _one_line_error(invoke_cli("users", "key", "revoke", key[:8], env=env), "already revoked")

    _ok("users", "key", "create", "alice", env=env)
    removed = _ok("users", "remove", "alice", env=env)
    assert removed.stdout.strip() == "removed alice; 1 API key revoked"
    everyone = json.loads(_ok("users", "list", "--all", "--json", env=env).stdout)
    assert [(u["name"], u["removed_at"] is not None) for u in everyone] == [
        ("alice", True),
        ("carol", False),
    ]
    _one_line_error(invoke_cli("users", "add", "alice", env=env), "never reused")
    _one_line_error(invoke_cli("users", "key", "create", "alice", env=env), "removed")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("users", "add", "Bob"), ("user name 'Bob'", "a-z")),
        (("users", "add", "bob", "--role", "boss"), ("role 'boss'", "approver")),
        (("users", "add", "system", "--role", "admin"), ("'system' is reserved",)),
        (("users", "add", "bob", "--kind", "robot"), ("user kind 'robot'", "service")),
        (("users", "add", "bob", "--customer", "c-1", "--role", "admin"), ("viewer",)),
        (("users", "set-role", "nobody", "admin"), ("no user named 'nobody'",)),
        (("users", "remove", "nobody"), ("no user named 'nobody'",)),
        (("users", "key", "create", "nobody"), ("no user named 'nobody'",)),
        (("users", "key", "list", "nobody"), ("no user named 'nobody'",)),
        (("users", "key", "revoke", "42"), ("no API key 42",)),
        (("users", "key", "revoke", "laptop"), ("give a key's id",)),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    env: dict[str, str], args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    _one_line_error(invoke_cli(*args, env=env), *words)
    assert json.loads(_ok("users", "list", "--all", "--json", env=env).stdout) == []


def test_a_taken_name_is_refused(env: dict[str, str]) -> None:
    _ok("users", "add", "dana", "--role", "admin", env=env)
    _one_line_error(invoke_cli("users", "add", "dana", env=env), "'dana' already exists")
    assert json.loads(_ok("users", "list", "--json", env=env).stdout)[0]["role"] == "admin"
