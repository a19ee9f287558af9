"""Dashboard passwords in the store (SQLite and PostgreSQL): argon2id hashes, one answer for a
wrong password and an unknown user, and a new password ending the sessions before it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from modelcycle.access.identity import Role
from modelcycle.access.passwords import (
    SignInRefusedError,
    demo_sign_in,
    session_user,
    set_password,
    verify_sign_in,
)
from modelcycle.access.users import add_user, remove_user
from modelcycle.errors import InvalidInputError
from modelcycle.store import Store
from modelcycle.store.tables import User
from tests.support.cli import invoke_cli

GOOD = "a long enough password"


def test_a_password_signs_in_and_is_kept_only_as_an_argon2id_hash(store: Store) -> None:
    with store.session() as session:
        add_user(session=session, name="ann", role=Role.APPROVER)
        set_password(session=session, name="ann", password=GOOD)
    with store.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "ann"))
        signed = verify_sign_in(session=session, name="ann", password=GOOD)
    assert stored is not None and stored.startswith("$argon2id$") and GOOD not in stored
    assert signed.identity.name == "ann" and signed.identity.role is Role.APPROVER


def test_wrong_password_unknown_user_removed_user_and_no_password_get_one_answer(
    store: Store,
) -> None:
    with store.session() as session:
        for name in ("ann", "gone", "nopass"):
            add_user(session=session, name=name, role=Role.VIEWER)
        for name in ("ann", "gone"):
            set_password(session=session, name=name, password=GOOD)
        remove_user(session=session, name="gone")
    answers = []
    for name, password in (
        ("ann", "wrong password!"),
        ("nobody", GOOD),
        ("gone", GOOD),
        ("nopass", GOOD),
    ):
        with store.session() as session, pytest.raises(SignInRefusedError) as refused:
            verify_sign_in(session=session, name=name, password=password)
        answers.append(str(refused.value))
    assert answers == ["wrong user name or password"] * 4


def test_a_new_password_ends_the_sessions_signed_in_before_it(store: Store) -> None:
    with store.session() as session:
        add_user(session=session, name="ann", role=Role.VIEWER)
        first = set_password(session=session, name="ann", password=GOOD)
    with store.session() as session:
        assert session_user(session=session, name="ann", password_set_at=first) is not None
        set_password(session=session, name="ann", password=GOOD + " 2")
    with store.session() as session:
        assert session_user(session=session, name="ann", password_set_at=first) is None


def test_short_passwords_are_refused(store: Store) -> None:
    with store.session() as session:
        add_user(session=session, name="ann", role=Role.VIEWER)
        with pytest.raises(InvalidInputError, match="at least 12 characters"):
            set_password(session=session, name="ann", password="short")


def test_the_demo_user_exists_in_local_only(store: Store) -> None:
    with store.session() as session:
        with pytest.raises(InvalidInputError, match="local only"):
            demo_sign_in(session=session, environment="prod")
        name, password = demo_sign_in(session=session, environment="local")
    with store.session() as session:
        assert verify_sign_in(session=session, name=name, password=password).identity.role is (
            Role.ADMIN
        )


def test_set_password_reads_stdin_and_refuses_a_short_one_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"MODELCYCLE_HOME": str(tmp_path)}
    assert invoke_cli("users", "add", "ann", "--role", "approver", env=env).returncode == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
    done = invoke_cli("users", "set-password", "ann", "--password-stdin", env=env)
    assert done.returncode == 0, done.stderr
    assert "password set for ann" in done.stdout
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    refused = invoke_cli("users", "set-password", "ann", "--password-stdin", env=env)
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "at least 12 characters" in refused.stderr
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
    unknown = invoke_cli("users", "set-password", "nobody", "--password-stdin", env=env)
    assert unknown.returncode != 0 and "no user named 'nobody'" in unknown.stderr
