"""Users and their API keys in the modelcycle store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelcycle.access.identity import LOCAL_ADMIN, Identity, Role, UnknownUserError
from modelcycle.access.keys import (
    create_api_key,
    identity_for_key,
    key_holders,
    list_api_keys,
    revoke_api_key,
)
from modelcycle.access.users import (
    acting_identity,
    add_user,
    get_identity,
    list_users,
    remove_user,
    set_role,
)
from modelcycle.errors import InvalidInputError
from modelcycle.store import Store
from tests.support.database import stored_text


def test_a_user_is_added_given_another_role_and_removed_but_never_forgotten(store: Store) -> None:
    with store.session() as session:
        added = add_user(session=session, name="alice", role=Role.OPERATOR)
        add_user(session=session, name="carol", role=Role.VIEWER, customer_id="c-01")
    assert added == Identity("alice", Role.OPERATOR)
    with store.session() as session:
        assert set_role(session=session, name="alice", role=Role.APPROVER) is Role.OPERATOR
        assert get_identity(session=session, name="alice").may(Role.APPROVER)
        assert get_identity(session=session, name="carol").customer_id == "c-01"
        create_api_key(session=session, user="alice", label="laptop")
    with store.session() as session:
        assert remove_user(session=session, name="alice") == 1  # her key is revoked with her
    with store.session() as session:
        with pytest.raises(UnknownUserError, match=r"'alice' was removed .* cannot act"):
            get_identity(session=session, name="alice")
        assert [u.name for u in list_users(session=session)] == ["carol"]
        everyone = list_users(session=session, include_removed=True)
        assert [(u.name, u.removed_at is not None) for u in everyone] == [
            ("alice", True),
            ("carol", False),
        ]
        with pytest.raises(InvalidInputError, match="never reused"):
            add_user(session=session, name="alice", role=Role.VIEWER)
        with pytest.raises(UnknownUserError, match="no user named 'bob'"):
            set_role(session=session, name="bob", role=Role.ADMIN)


@pytest.mark.parametrize(
    ("name", "role", "customer", "problem"),
    [
        ("Alice", Role.VIEWER, None, "user name 'Alice': use 1-64 characters"),
        ("a" * 65, Role.VIEWER, None, "use 1-64 characters"),
        ("", Role.VIEWER, None, "use 1-64 characters"),
        ("system", Role.ADMIN, None, "'system' is reserved"),
        ("local", Role.ADMIN, None, "'local' is reserved"),
        ("dave", Role.APPROVER, "c-01", "bound to customer 'c-01', so its role is viewer"),
    ],
)
def test_a_bad_user_is_refused_in_one_line(
    store: Store, name: str, role: Role, customer: str | None, problem: str
) -> None:
    with store.session() as session, pytest.raises(InvalidInputError, match=problem):
        add_user(session=session, name=name, role=role, customer_id=customer)
    with store.session() as session:
        assert list_users(session=session, include_removed=True) == []


def test_a_user_key_is_shown_once_stored_hashed_and_stops_working_when_revoked(
    store: Store,
) -> None:
    with store.session() as session:
        add_user(session=session, name="bob", role=Role.APPROVER)
        key = create_api_key(session=session, user="bob", label="ci")
        other = create_api_key(session=session, user="bob")
    assert key.startswith("mc_") and len(key) > 40 and key != other
    assert key not in stored_text(store.engine.url.render_as_string(hide_password=False))
    with store.session() as session:
        assert identity_for_key(session=session, key=key) == Identity("bob", Role.APPROVER)
        assert identity_for_key(session=session, key=key[:-1] + "x") is None
        assert identity_for_key(session=session, key="not-a-key") is None
        listed = list_api_keys(session=session, user="bob")
        assert {k.prefix for k in listed} == {key[:8], other[:8]}
        assert all(k.last_used_at is None for k in listed if k.prefix == other[:8])
        revoked = revoke_api_key(session=session, key=key[:8])
    assert revoked.user == "bob" and revoked.label == "ci"
    with store.session() as session:
        assert identity_for_key(session=session, key=key) is None
        holders = key_holders(session=session)
        assert [holder.identity.name for holder in holders.values()] == ["bob"]
        with pytest.raises(InvalidInputError, match="already revoked"):
            revoke_api_key(session=session, key=str(revoked.id))
        assert len(list_api_keys(session=session, include_revoked=True)) == 2


def test_a_key_names_its_last_use_to_the_minute(store: Store) -> None:
    first = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with store.session() as session:
        add_user(session=session, name="erin", role=Role.VIEWER)
        key = create_api_key(session=session, user="erin")
    for seconds in (0, 30, 90):
        with store.session() as session:
            identity_for_key(session=session, key=key, now=first + timedelta(seconds=seconds))
        with store.session() as session:
            (listed,) = list_api_keys(session=session, user="erin")
        expected = first + timedelta(seconds=90 if seconds == 90 else 0)
        assert listed.last_used_at == expected


def test_revoking_an_unknown_key_never_repeats_the_key(store: Store) -> None:
    secret = "mc_" + "s" * 43
    with store.session() as session:
        with pytest.raises(InvalidInputError) as refused:
            revoke_api_key(session=session, key=secret)
        assert secret not in str(refused.value) and "mc_sssss…" in str(refused.value)
        with pytest.raises(InvalidInputError, match="give a key's id"):
            revoke_api_key(session=session, key="laptop")


def test_in_local_the_cli_acts_as_the_local_admin_until_somebody_else_exists(
    store: Store,
) -> None:
    with store.session() as session:
        assert acting_identity(session=session, name=None, environment="local") == LOCAL_ADMIN
    with store.session() as session:  # created on first use, found after
        assert acting_identity(session=session, name=None, environment="local") == LOCAL_ADMIN
        assert [u.name for u in list_users(session=session)] == ["local"]
        with pytest.raises(InvalidInputError, match="in prod give --as NAME or set MODELCYCLE_US"):
            acting_identity(session=session, name=None, environment="prod")
        add_user(session=session, name="frank", role=Role.APPROVER)
    with store.session() as session:
        with pytest.raises(InvalidInputError, match=r"the store has users \(frank\)"):
            acting_identity(session=session, name=None, environment="local")
        assert acting_identity(session=session, name="frank", environment="dev").name == "frank"
