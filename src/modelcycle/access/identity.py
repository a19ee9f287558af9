"""Roles and the identity a decision is made by.

Roles are ordered: each one may do what the ones below it may. The system's automatic decisions
(the local and dev release policy) are made by `SYSTEM`, so the audit trail never shows a person
for what no person decided. Pure: no database here, so the API can import it cheaply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from modelcycle.errors import InvalidInputError

IdentityKind = Literal["person", "service", "system"]


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role may do what `needed` may (admin allows everything)."""
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Identity:
    """A user as a decision or a request sees it; `customer_id` binds a viewer to one customer."""

    name: str
    role: Role
    customer_id: str | None = None
    kind: IdentityKind = "person"

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


SYSTEM = Identity("system", Role.ADMIN, kind="system")
# Whoever calls the API with a key from MODELCYCLE_API_KEYS: may predict and read, not decide.
SERVICE_API_KEYS = Identity("service:api-keys", Role.OPERATOR, kind="service")
# The local admin: the open API in `local`, and the CLI in `local` before any user exists.
LOCAL_ADMIN = Identity("local", Role.ADMIN, kind="person")

# Names the audit trail uses for what no person in the users table did.
RESERVED_NAMES = frozenset({SYSTEM.name, LOCAL_ADMIN.name})
# The kinds a users row may have: the system is no row of its own.
_USER_KINDS: dict[str, IdentityKind] = {"person": "person", "service": "service"}
_USER_NAME = re.compile(r"^[a-z0-9._@-]{1,64}$")


class UnknownUserError(InvalidInputError):
    """No user by that name, or the user was removed (a removed user cannot act)."""


class UnknownApiKeyError(InvalidInputError):
    """No API key by that id or prefix."""


def parse_role(text: str) -> Role:
    """The role named by `text`, or one line listing the roles."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInputError(f"role {text!r}: use one of {roles}") from None


def check_user_name(name: str) -> str:
    """`name` when it can name a user: 1–64 characters of a-z, 0-9, '.', '_', '@', '-'."""
    if not _USER_NAME.match(name):
        raise InvalidInputError(
            f"user name {name!r}: use 1-64 characters of a-z, 0-9, '.', '_', '@' and '-'"
        )
    return name


def check_user_kind(kind: str) -> IdentityKind:
    if kind not in _USER_KINDS:
        raise InvalidInputError(f"user kind {kind!r}: use one of {', '.join(_USER_KINDS)}")
    return _USER_KINDS[kind]
