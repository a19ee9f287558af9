"""Roles are ordered: an admin may approve, a viewer may not."""

from __future__ import annotations

from modelcycle.access.identity import SYSTEM, Identity, Role


def test_each_role_allows_what_the_roles_below_it_allow() -> None:
    assert Role.ADMIN.allows(Role.APPROVER)
    assert Role.APPROVER.allows(Role.APPROVER)
    assert Role.APPROVER.allows(Role.VIEWER)
    assert not Role.OPERATOR.allows(Role.APPROVER)
    assert not Role.VIEWER.allows(Role.OPERATOR)


def test_a_viewer_identity_may_not_approve_and_the_system_decides_as_admin() -> None:
    assert not Identity("carol", Role.VIEWER, customer_id="c-01").may(Role.APPROVER)
    assert SYSTEM.may(Role.APPROVER)
    assert SYSTEM.kind == "system"
