"""Users' passwords for the dashboard's sign-in: argon2id hashes in the store, never the password.

argon2id (argon2-cffi) because it is the password hash made for this: slow and memory-hard on
purpose, unlike the sha256 that suits long random API keys (access/keys.py). Every function takes
the caller's session (keyword `session`) and commits nothing itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelcycle.access.identity import Identity, Role
from modelcycle.access.users import active_user, add_user, identity_of, utc
from modelcycle.errors import InvalidInputError
from modelcycle.store.tables import User

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" only costs us time

_HASHER = PasswordHasher()
# Verified when the user does not exist or has no password, so that a wrong name takes as long
# as a wrong password: the time of the answer must not tell which names exist.
_DUMMY_HASH = _HASHER.hash("modelcycle: no such user, same work")


class SignInRefusedError(InvalidInputError):
    """Wrong name or password: one message for both, so it does not tell which names exist."""

    def __init__(self) -> None:
        super().__init__("wrong user name or password")


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and when their password was set (a session from before it is refused)."""

    identity: Identity
    password_set_at: datetime


def check_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInputError(f"the password is too short: use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInputError(f"the password is too long: at most {MAX_LENGTH} characters")
    if not password.strip():
        raise InvalidInputError("the password is only spaces")
    return password


def set_password(*, session: Session, name: str, password: str) -> datetime:
    """Give an active user a new password; sessions signed before now stop working."""
    user = active_user(session, name)
    user.password_hash = _HASHER.hash(check_password(password))
    user.password_set_at = datetime.now(UTC)
    return user.password_set_at


def verify_sign_in(*, session: Session, name: str, password: str) -> SignedIn:
    """The user when `password` is theirs; a `SignInRefusedError` otherwise, with the same
    message and the same argon2 work whether the name exists, is removed or has no password."""
    user = session.scalar(select(User).where(User.name == name[:64]))
    usable = (
        user is not None
        and user.removed_at is None
        and user.password_hash is not None
        and user.password_set_at is not None
    )
    stored = user.password_hash if usable and user is not None else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password[:MAX_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise SignInRefusedError() from None
    if stored is None or user is None or user.password_set_at is None:
        raise SignInRefusedError()
    if _HASHER.check_needs_rehash(stored):
        user.password_hash = _HASHER.hash(password)
    return SignedIn(identity=identity_of(user), password_set_at=utc(user.password_set_at))


def session_user(*, session: Session, name: str, password_set_at: datetime) -> Identity | None:
    """The user a session names, while they are active and their password is the one the
    session was signed in with; None when either changed (the session is over)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.removed_at is not None or user.password_set_at is None:
        return None
    if abs((utc(user.password_set_at) - password_set_at).total_seconds()) > 0.001:
        return None
    return identity_of(user)


DEMO_USER = "demo"


def demo_sign_in(*, session: Session, environment: str) -> tuple[str, str]:
    """The demo's admin `demo` with a new random password, for the local environment only (a
    known account anywhere else would be a door left open). Printed once by `modelcycle demo`."""
    if environment != "local":
        raise InvalidInputError(f"the demo user exists in local only, not in {environment}")
    exists = session.scalar(select(User).where(User.name == DEMO_USER))
    if exists is None:
        add_user(session=session, name=DEMO_USER, role=Role.ADMIN)
    password = secrets.token_urlsafe(12)
    set_password(session=session, name=DEMO_USER, password=password)
    return DEMO_USER, password
