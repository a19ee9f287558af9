"""Users in the modelcycle store: who may act, with which role.

A user is never deleted: removal stamps `removed_at`, revokes the user's API keys and keeps the
row, so the audit trail can still say who decided, and the name is never given to someone else.
Every function takes the caller's session (keyword `session`) and commits nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelcycle.access.identity import (
    LOCAL_ADMIN,
    RESERVED_NAMES,
    Identity,
    IdentityKind,
    Role,
    UnknownUserError,
    check_user_kind,
    check_user_name,
)
from modelcycle.errors import InvalidInputError
from modelcycle.store.tables import ApiKey, User
from modelcycle.store.times import as_utc as utc

__all__ = [
    "UnknownUserError",  # raised here, defined with the pure identity types
    "UserRecord",
    "acting_identity",
    "active_user",
    "add_user",
    "get_identity",
    "identity_of",
    "list_users",
    "remove_user",
    "set_role",
    "utc",
]


@dataclass(frozen=True)
class UserRecord:
    """A user as `users list` shows it."""

    name: str
    role: Role
    kind: IdentityKind
    customer_id: str | None
    created_at: datetime
    removed_at: datetime | None
    active_keys: int

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.role, customer_id=self.customer_id, kind=self.kind)


def identity_of(user: User) -> Identity:
    return Identity(
        user.name, Role(user.role), customer_id=user.customer_id, kind=check_user_kind(user.kind)
    )


def add_user(
    *,
    session: Session,
    name: str,
    role: Role,
    customer_id: str | None = None,
    kind: str = "person",
) -> Identity:
    """Add a user; a taken name (even a removed user's) is refused, and so is a reserved one."""
    check_user_name(name)
    if name in RESERVED_NAMES:
        raise InvalidInputError(f"user name {name!r} is reserved for modelcycle's own decisions")
    return _insert(session, name=name, role=role, customer_id=customer_id, kind=kind)


def _insert(
    session: Session, *, name: str, role: Role, customer_id: str | None, kind: str
) -> Identity:
    _check_customer(name, role, customer_id)
    existing = session.scalar(select(User).where(User.name == name))
    if existing is not None:
        if existing.removed_at is not None:
            raise InvalidInputError(
                f"user {name!r} was removed on {utc(existing.removed_at):%Y-%m-%d}; "
                "a name is never reused, so the audit trail names one person: choose another"
            )
        raise InvalidInputError(f"user {name!r} already exists (role {existing.role})")
    user = User(
        name=name,
        role=role.value,
        customer_id=customer_id,
        kind=check_user_kind(kind),
        created_at=datetime.now(UTC),
    )
    session.add(user)
    session.flush()
    return identity_of(user)


def _check_customer(name: str, role: Role, customer_id: str | None) -> None:
    """A customer's user sees one customer's data, and only sees it: a viewer."""
    if customer_id is None:
        return
    if not customer_id.strip():
        raise InvalidInputError(f"user {name!r}: the customer id is empty")
    if role is not Role.VIEWER:
        raise InvalidInputError(
            f"user {name!r} is bound to customer {customer_id!r}, so its role is viewer, "
            f"not {role.value}"
        )


def active_user(session: Session, name: str) -> User:
    """The row of a user who may act; a missing or removed one is an `UnknownUserError`."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUserError(f"no user named {name!r} (see `modelcycle users list`)")
    if user.removed_at is not None:
        raise UnknownUserError(
            f"user {name!r} was removed on {utc(user.removed_at):%Y-%m-%d} and cannot act"
        )
    return user


def get_identity(*, session: Session, name: str) -> Identity:
    """The identity of an active user; a missing or removed one is an `UnknownUserError`."""
    return identity_of(active_user(session, name))


def list_users(*, session: Session, include_removed: bool = False) -> list[UserRecord]:
    """Users by name, with how many API keys each holds that still work."""
    active_keys = (
        select(ApiKey.user_id, func.count().label("n"))
        .where(ApiKey.revoked_at.is_(None))
        .group_by(ApiKey.user_id)
        .subquery()
    )
    query = (
        select(User, func.coalesce(active_keys.c.n, 0))
        .outerjoin(active_keys, active_keys.c.user_id == User.id)
        .order_by(User.name)
    )
    if not include_removed:
        query = query.where(User.removed_at.is_(None))
    return [
        UserRecord(
            name=user.name,
            role=Role(user.role),
            kind=check_user_kind(user.kind),
            customer_id=user.customer_id,
            created_at=utc(user.created_at),
            removed_at=utc(user.removed_at) if user.removed_at else None,
            active_keys=int(keys),
        )
        for user, keys in session.execute(query)
    ]


def remove_user(*, session: Session, name: str) -> int:
    """Remove a user (they can no longer act) and revoke their keys; returns how many."""
    user = active_user(session, name)
    now = datetime.now(UTC)
    user.removed_at = now
    keys = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    ).all()
    for key in keys:
        key.revoked_at = now
    return len(keys)


def set_role(*, session: Session, name: str, role: Role) -> Role:
    """Give an active user another role; returns the role they had."""
    user = active_user(session, name)
    _check_customer(name, role, user.customer_id)
    before = Role(user.role)
    user.role = role.value
    return before


def acting_identity(*, session: Session, name: str | None, environment: str) -> Identity:
    """Who a CLI command acts as: the user `name` (--as, else MODELCYCLE_USER).

    Without a name, `local` acts as the local admin while no other user exists (created on first
    use, so the audit trail names a user); anywhere else the command must say who acts.
    """
    if name is not None:
        return get_identity(session=session, name=name)
    if environment == "local":
        others = session.scalars(
            select(User.name).where(User.removed_at.is_(None), User.name != LOCAL_ADMIN.name)
        ).all()
        if not others:
            return _local_admin(session)
        listed = ", ".join(sorted(others)[:5]) + (", …" if len(others) > 5 else "")
        raise InvalidInputError(
            f"who is acting? the store has users ({listed}): give --as NAME or set MODELCYCLE_USER"
        )
    raise InvalidInputError(
        f"who is acting? in {environment} give --as NAME or set MODELCYCLE_USER"
    )


def _local_admin(session: Session) -> Identity:
    existing = session.scalar(select(User).where(User.name == LOCAL_ADMIN.name))
    if existing is None:
        return _insert(
            session, name=LOCAL_ADMIN.name, role=Role.ADMIN, customer_id=None, kind="person"
        )
    if existing.removed_at is not None:
        raise UnknownUserError(
            "the local admin 'local' was removed and cannot act: give --as NAME or set "
            "MODELCYCLE_USER"
        )
    return identity_of(existing)
