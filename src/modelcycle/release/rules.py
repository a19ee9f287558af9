"""What a release decision may be, as pure rules: no database, no MLflow.

A request is `pending` until one decision ends it: `approved`, `rejected`, or `superseded` by a
newer challenger of the same model; an approved one becomes `rolled_back` when `champion` is
returned to the version before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelcycle.access.identity import Identity, Role
from modelcycle.errors import ConflictError, InvalidInputError, NotPermittedError

State = Literal["pending", "approved", "rejected", "superseded", "rolled_back"]
Action = Literal["open", "approve", "reject", "supersede", "rollback"]
STATES: tuple[State, ...] = ("pending", "approved", "rejected", "superseded", "rolled_back")
COMMENT_MAX_CHARS = 2000
CHAMPION = "champion"
PREVIOUS = "previous"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on a challenger, as the gates hand it over (plain, serialisable)."""

    name: str
    passed: bool
    detail: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "values": dict(self.values),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        name, passed = data.get("name"), data.get("passed")
        if not isinstance(name, str) or not name or not isinstance(passed, bool):
            raise InvalidInputError(
                f"gate result {dict(data)!r}: needs a 'name' (text) and 'passed' (true/false)"
            )
        values = data.get("values") or {}
        return cls(name, passed, str(data.get("detail") or ""), dict(values))


def metric_gate(verdict: Mapping[str, Any]) -> GateResult:
    """The metric gate's verdict (`training.gate.GateResult.as_dict()`) as a release gate.

    Its `name` is the model's, so the gate is named `metric`; the numbers go to `values`.
    """
    values = {k: v for k, v in verdict.items() if k not in ("name", "passed", "reason")}
    return GateResult("metric", bool(verdict["passed"]), str(verdict.get("reason") or ""), values)


def parse_gates(results: Sequence[Mapping[str, Any] | GateResult]) -> list[GateResult]:
    return [r if isinstance(r, GateResult) else GateResult.from_dict(r) for r in results]


def failed_gates(gates: Sequence[GateResult]) -> list[str]:
    return [gate.name for gate in gates if not gate.passed]


def check_comment(comment: str | None) -> str:
    """The comment, stripped; over the limit is refused rather than cut."""
    text = (comment or "").strip()
    if len(text) > COMMENT_MAX_CHARS:
        raise InvalidInputError(
            f"comment: {len(text)} characters, at most {COMMENT_MAX_CHARS} are kept"
        )
    return text


def check_pending(request_id: int, state: str) -> None:
    if state != "pending":
        shown = state.replace("_", " ")
        raise ConflictError(
            f"release request {request_id} is {shown}: only a pending request can be decided"
        )


def check_may_decide(
    *,
    request_id: int,
    state: str,
    requested_by: str,
    actor: Identity,
    action: Literal["approve", "reject"],
    gates: Sequence[GateResult],
    override_reason: str | None,
) -> str | None:
    """Refuse a decision the rules forbid; returns the override reason that will be recorded."""
    check_pending(request_id, state)
    if not actor.may(Role.APPROVER):
        raise NotPermittedError(
            f"{action} needs the approver role; {actor.name} is {actor.role.value}"
        )
    if actor.kind != "system" and actor.name == requested_by:
        raise NotPermittedError(
            f"{actor.name} requested release {request_id} and cannot decide it: "
            "ask another approver"
        )
    reason = (override_reason or "").strip() or None
    if reason is not None and len(reason) > COMMENT_MAX_CHARS:
        raise InvalidInputError(f"override reason: at most {COMMENT_MAX_CHARS} characters")
    failed = failed_gates(gates)
    if action == "reject" or not failed:
        if reason is not None:
            why = "a rejection" if action == "reject" else "all gates passed, so there"
            raise InvalidInputError(f"{why} is nothing to override: drop --override")
        return None
    if reason is None:
        raise NotPermittedError(
            f"release {request_id} failed gate(s) {', '.join(failed)}: approval is blocked "
            "unless an admin overrides with a reason (--override REASON)"
        )
    if not actor.may(Role.ADMIN):
        raise NotPermittedError(
            f"overriding failed gate(s) {', '.join(failed)} needs the admin role; "
            f"{actor.name} is {actor.role.value}"
        )
    return reason


def auto_approves(gates: Sequence[GateResult], *, auto_approve: bool) -> bool:
    """The local and dev policy: the system approves when every gate passed (and there is one)."""
    return auto_approve and bool(gates) and not failed_gates(gates)


@dataclass(frozen=True)
class AliasPlan:
    """The aliases of one model before and after a decision (None: the alias is absent)."""

    model: str
    before: Mapping[str, str | None]
    after: Mapping[str, str | None]

    @property
    def changes(self) -> dict[str, str | None]:
        return {a: v for a, v in self.after.items() if self.before.get(a) != v}


def approval_plan(model: str, aliases: Mapping[str, str | None], version: str) -> AliasPlan:
    """`champion` to the version, the old champion to `previous` (kept when nothing moves)."""
    champion = aliases.get(CHAMPION)
    before = {CHAMPION: champion, PREVIOUS: aliases.get(PREVIOUS)}
    if champion == version:
        return AliasPlan(model, before, before)
    return AliasPlan(model, before, {CHAMPION: version, PREVIOUS: champion or before[PREVIOUS]})


def rollback_plan(
    model: str, aliases: Mapping[str, str | None], target: str, target_replaced: str | None
) -> AliasPlan:
    """`champion` back to `target`; `previous` to what `target` itself replaced (or none)."""
    before = {CHAMPION: aliases.get(CHAMPION), PREVIOUS: aliases.get(PREVIOUS)}
    return AliasPlan(model, before, {CHAMPION: target, PREVIOUS: target_replaced})


@dataclass(frozen=True)
class DecisionRecord:
    """A decision as the trail keeps it."""

    id: int
    request_id: int
    model: str
    version: str
    action: str
    actor: str
    actor_kind: str
    at: datetime
    comment: str
    gate_results: list[dict[str, Any]]
    alias_from: str | None
    alias_to: str | None
    override_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "action": self.action,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "at": self.at.isoformat(timespec="seconds"),
            "comment": self.comment,
            "gate_results": self.gate_results,
            "champion_from": self.alias_from,
            "champion_to": self.alias_to,
            "override_reason": self.override_reason,
        }


@dataclass(frozen=True)
class ReleaseRecord:
    """A release request as lists and the API show it."""

    id: int
    model: str
    version: str
    requested_by: str
    opened_at: datetime
    state: str
    gate_results: list[dict[str, Any]]
    environment: str
    lineage: dict[str, Any]

    @property
    def gates(self) -> list[GateResult]:
        return parse_gates(self.gate_results)

    @property
    def gates_passed(self) -> bool:
        return not failed_gates(self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "requested_by": self.requested_by,
            "opened_at": self.opened_at.isoformat(timespec="seconds"),
            "state": self.state,
            "gates_passed": self.gates_passed,
            "gate_results": self.gate_results,
            "environment": self.environment,
            "lineage": self.lineage,
        }
