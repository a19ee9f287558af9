"""Roles and the identity a decision is made by.

Roles are ordered: each one may do what the ones below it may. The system's automatic decisions
(the local and dev release policy) are made by `SYSTEM`, so the audit trail never shows a person
for what no person decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

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
