"""`modelcycle users`: people and services with roles, and their API keys.

The CLI trusts whoever can reach the store's database, as `psql` would: these commands change
the users table directly. The API is the boundary for everybody else (see docs/access.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from modelcycle.access.identity import Identity, Role, parse_role
from modelcycle.cli.context import settings_from, stderr, stdout
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

users_app = typer.Typer(
    help="People and services who may act, with their roles and API keys.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="API keys of users: create (shown once), list, revoke.", no_args_is_help=True
)
users_app.add_typer(keys_app, name="key")

ROLES_HELP = "viewer < operator < approver < admin: each may do what the ones before it may."
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# For the commands that decide (`release approve`, …): `acting_as: ActingAs = None`.
ActingAs = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="The user who acts (default MODELCYCLE_USER; in local, the local admin while "
        "no other user exists).",
    ),
]


@contextmanager
def store_session(settings: Settings) -> Iterator[Session]:
    """One transaction on the store, committed when the block ends."""
    from modelcycle.store import open_store

    store = open_store(settings)
    try:
        with store.session() as session:
            yield session
    finally:
        store.close()


def acting_as(settings: Settings, session: Session, name: str | None) -> Identity:
    """Who a deciding command acts as: --as, else MODELCYCLE_USER, else (local) the local admin."""
    from modelcycle.access.users import acting_identity

    return acting_identity(
        session=session, name=name or settings.user, environment=settings.environment
    )


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _short(when: str | None) -> str:
    """A UTC time as a table shows it: to the minute."""
    return when[:16].replace("T", " ") if when else "-"


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="1-64 characters of a-z, 0-9, '.', '_', '@', '-'.")],
    role: Annotated[str, typer.Option("--role", help=ROLES_HELP)] = Role.VIEWER.value,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Bind a viewer to one customer's data.")
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="person, or service for a program's account.")
    ] = "person",
    as_json: AsJson = False,
) -> None:
    """Add a user (a viewer unless --role says otherwise); a removed user's name stays taken."""
    from modelcycle.access.users import add_user

    wanted = parse_role(role)
    with store_session(settings_from(ctx)) as session:
        added = add_user(session=session, name=name, role=wanted, customer_id=customer, kind=kind)
    if as_json:
        stdout.print_json(data=_identity_dict(added))
        return
    bound = f", customer {added.customer_id}" if added.customer_id else ""
    stdout.print(f"added {added.name} ({added.role.value}{bound})", highlight=False)


def _identity_dict(identity: Identity) -> dict[str, Any]:
    return {
        "name": identity.name,
        "role": identity.role.value,
        "kind": identity.kind,
        "customer_id": identity.customer_id,
    }


@users_app.command("list")
def list_(
    ctx: typer.Context,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Also removed users (kept for the audit trail).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Users by name, with their role and how many working API keys each holds."""
    from modelcycle.access.users import list_users

    with store_session(settings_from(ctx)) as session:
        users = list_users(session=session, include_removed=include_removed)
    rows: list[dict[str, Any]] = [
        {
            **_identity_dict(user.identity),
            "active_keys": user.active_keys,
            "created_at": _when(user.created_at),
            "removed_at": _when(user.removed_at),
        }
        for user in users
    ]
    if as_json:
        stdout.print_json(data=rows)
        return
    table = Table(title="users (times in UTC)")
    for column in ("name", "role", "kind", "customer", "keys", "created", "removed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            row["kind"],
            row["customer_id"] or "-",
            str(row["active_keys"]),
            _short(row["created_at"]),
            _short(row["removed_at"]),
        )
    stdout.print(table)


@users_app.command("remove")
def remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to remove.")]
) -> None:
    """Remove a user: they can no longer act and their API keys stop working.

    The row stays, so the audit trail still names them, and the name is never reused.
    """
    from modelcycle.access.users import remove_user

    with store_session(settings_from(ctx)) as session:
        revoked = remove_user(session=session, name=name)
    keys = "no API keys" if revoked == 0 else f"{revoked} API key{'s' if revoked > 1 else ''}"
    stdout.print(f"removed {name}; {keys} revoked", highlight=False)


@users_app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Argument(help=ROLES_HELP)],
) -> None:
    """Give a user another role (the API sees it within MODELCYCLE_SERVING_KEY_REFRESH_SECONDS)."""
    from modelcycle.access.users import set_role as change_role

    wanted = parse_role(role)
    with store_session(settings_from(ctx)) as session:
        before = change_role(session=session, name=name, role=wanted)
    stdout.print(f"{name}: {before.value} → {wanted.value}", highlight=False)


@users_app.command("set-password")
def set_password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user who signs in to the dashboard.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
) -> None:
    """Set the password a user signs in to the dashboard with (at least 12 characters).

    Prompted twice, unseen, unless --password-stdin; the user's earlier sessions end.
    """
    from modelcycle.access.passwords import check_password
    from modelcycle.access.passwords import set_password as store_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    with store_session(settings_from(ctx)) as session:
        store_password(session=session, name=name, password=password)
    stdout.print(f"password set for {name}; their earlier sessions are over", highlight=False)


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the key belongs to.")],
    label: Annotated[
        str, typer.Option("--label", help="What the key is for, e.g. the program using it.")
    ] = "",
    as_json: AsJson = False,
) -> None:
    """Create an API key for a user and print it: it is shown this once, only its hash is kept.

    The key alone goes to stdout (`KEY=$(modelcycle users key create alice)`); the note about it
    to stderr. Send it as `Authorization: Bearer <key>`.
    """
    from modelcycle.access.keys import PREFIX_LENGTH, create_api_key

    with store_session(settings_from(ctx)) as session:
        key = create_api_key(session=session, user=user, label=label)
    prefix = key[:PREFIX_LENGTH]
    if as_json:
        stdout.print_json(data={"user": user, "prefix": prefix, "label": label, "key": key})
    else:
        stdout.print(key, markup=False, highlight=False, soft_wrap=True)
    stderr.print(
        f"API key {prefix}… for {user}: shown this once, keep it now "
        f"(revoke it with `modelcycle users key revoke {prefix}`)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Also revoked keys.")] = False,
    as_json: AsJson = False,
) -> None:
    """API keys by their id and prefix (never the key), newest first, with their last use."""
    from modelcycle.access.keys import list_api_keys

    with store_session(settings_from(ctx)) as session:
        keys = list_api_keys(session=session, user=user, include_revoked=include_revoked)
    rows: list[dict[str, Any]] = [
        {
            "id": key.id,
            "prefix": key.prefix,
            "user": key.user,
            "label": key.label,
            "created_at": _when(key.created_at),
            "last_used_at": _when(key.last_used_at),
            "revoked_at": _when(key.revoked_at),
        }
        for key in keys
    ]
    if as_json:
        stdout.print_json(data=rows)
        return
    table = Table(title="API keys (times in UTC)")
    for column in ("id", "prefix", "user", "label", "created", "last used", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            f"{row['prefix']}…",
            row["user"],
            row["label"] or "-",
            _short(row["created_at"]),
            _short(row["last_used_at"]),
            _short(row["revoked_at"]),
        )
    stdout.print(table)


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's id or prefix (see `users key list`).")],
) -> None:
    """Revoke an API key: the API refuses it within MODELCYCLE_SERVING_KEY_REFRESH_SECONDS."""
    from modelcycle.access.keys import revoke_api_key

    with store_session(settings_from(ctx)) as session:
        revoked = revoke_api_key(session=session, key=key)
    stdout.print(
        f"revoked API key {revoked.id} ({revoked.prefix}…, {revoked.user})", highlight=False
    )
