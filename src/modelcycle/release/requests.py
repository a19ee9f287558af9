"""Release requests and their decisions in the modelcycle store.

A request's `state` column changes only in the transaction that appends the decision saying why;
decisions are append-only (the migration makes the database refuse UPDATE and DELETE on them).
Every function takes the caller's session (keyword `session`) and commits nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from modelcycle.access.identity import SYSTEM, Identity
from modelcycle.access.users import utc
from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.release.rules import (
    STATES,
    Action,
    DecisionRecord,
    GateResult,
    ReleaseRecord,
    State,
)
from modelcycle.store.tables import ReleaseDecision, ReleaseRequest


def request_record(row: ReleaseRequest) -> ReleaseRecord:
    return ReleaseRecord(
        id=row.id,
        model=row.model,
        version=row.version,
        requested_by=row.requested_by,
        opened_at=utc(row.opened_at),
        state=row.state,
        gate_results=list(row.gate_results),
        environment=row.environment,
        lineage=dict(row.lineage),
    )


def decision_record(row: ReleaseDecision, request: ReleaseRequest) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        request_id=row.request_id,
        model=request.model,
        version=request.version,
        action=row.action,
        actor=row.actor,
        actor_kind=row.actor_kind,
        at=utc(row.at),
        comment=row.comment,
        gate_results=list(row.gate_results),
        alias_from=row.alias_from,
        alias_to=row.alias_to,
        override_reason=row.override_reason,
    )


def find_request(session: Session, request_id: int, *, for_update: bool = False) -> ReleaseRequest:
    """The request row (locked for the decision on PostgreSQL), or one line saying there is none."""
    query = select(ReleaseRequest).where(ReleaseRequest.id == request_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise DataNotFoundError(f"no release request {request_id} (see `modelcycle release list`)")
    return row


def request_state(session: Session, request_id: int) -> str | None:
    row = session.get(ReleaseRequest, request_id)
    return None if row is None else row.state


def one_decision_at_a_time(session: Session, model: str) -> None:
    """Hold the model's decision lock until the transaction ends, before the aliases are read.

    Two approvals of one model at once would each read the same `champion` and record the same
    move. PostgreSQL takes an advisory lock on the model's name; SQLite's write lock (taken by a
    write that changes nothing) serialises every decision, which is as good at this scale.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(model))))
    else:
        session.execute(
            update(ReleaseRequest)
            .where(ReleaseRequest.model == model, ReleaseRequest.id < 0)
            .values(state=ReleaseRequest.state)
            .execution_options(synchronize_session=False)
        )


def append_decision(
    session: Session,
    request: ReleaseRequest,
    *,
    action: Action,
    actor: Identity,
    new_state: State,
    comment: str = "",
    alias_from: str | None = None,
    alias_to: str | None = None,
    override_reason: str | None = None,
    at: datetime | None = None,
) -> DecisionRecord:
    """Append a decision and set the request's state to what it leads to, in one flush."""
    row = ReleaseDecision(
        request_id=request.id,
        action=action,
        actor=actor.name,
        actor_kind=actor.kind,
        at=at or datetime.now(UTC),
        comment=comment,
        gate_results=list(request.gate_results),
        alias_from=alias_from,
        alias_to=alias_to,
        override_reason=override_reason,
    )
    request.state = new_state
    session.add(row)
    session.flush()
    return decision_record(row, request)


def add_request(
    *,
    session: Session,
    model: str,
    version: str,
    requested_by: Identity,
    gates: Sequence[GateResult],
    environment: str,
    lineage: dict[str, Any],
    comment: str = "",
) -> tuple[ReleaseRecord, list[ReleaseRecord]]:
    """Open a request for a new challenger; returns it and the older pending ones it superseded.

    Idempotent: the same version again (a retried daily run) returns the request already open,
    whatever its state, and supersedes nothing.
    """
    existing = session.scalar(
        select(ReleaseRequest).where(
            ReleaseRequest.model == model,
            ReleaseRequest.version == version,
            ReleaseRequest.environment == environment,
        )
    )
    if existing is not None:
        return request_record(existing), []
    if not version.isdigit():
        raise InvalidInputError(f"version {version!r}: a registered version is a number")
    now = datetime.now(UTC)
    row = ReleaseRequest(
        model=model,
        version=version,
        requested_by=requested_by.name,
        opened_at=now,
        state="pending",
        gate_results=[gate.to_dict() for gate in gates],
        environment=environment,
        lineage=lineage,
    )
    session.add(row)
    session.flush()
    append_decision(
        session,
        row,
        action="open",
        actor=requested_by,
        new_state="pending",
        comment=comment,
        at=now,
    )
    older = session.scalars(
        select(ReleaseRequest).where(
            ReleaseRequest.model == model,
            ReleaseRequest.environment == environment,
            ReleaseRequest.state == "pending",
            ReleaseRequest.id != row.id,
        )
    ).all()
    superseded = []
    for old in older:
        if int(old.version) < int(version):
            append_decision(
                session,
                old,
                action="supersede",
                actor=SYSTEM,
                new_state="superseded",
                comment=f"superseded by version {version} (request {row.id})",
                at=now,
            )
            superseded.append(request_record(old))
    return request_record(row), superseded


def list_requests(
    *,
    session: Session,
    model: str | None = None,
    state: str | None = None,
    environment: str | None = None,
) -> list[ReleaseRecord]:
    """Requests, newest first."""
    query = select(ReleaseRequest).order_by(ReleaseRequest.id.desc())
    if model is not None:
        query = query.where(ReleaseRequest.model == model)
    if state is not None:
        if state not in STATES:
            raise InvalidInputError(f"state {state!r}: use one of {', '.join(STATES)}")
        query = query.where(ReleaseRequest.state == state)
    if environment is not None:
        query = query.where(ReleaseRequest.environment == environment)
    return [request_record(row) for row in session.scalars(query)]


def get_request(*, session: Session, request_id: int) -> ReleaseRecord:
    return request_record(find_request(session, request_id))


def decisions(
    *, session: Session, model: str | None = None, request_id: int | None = None
) -> list[DecisionRecord]:
    """The audit trail, oldest first: every decision on one model's (or one request's) releases."""
    query = (
        select(ReleaseDecision, ReleaseRequest)
        .join(ReleaseRequest, ReleaseDecision.request_id == ReleaseRequest.id)
        .order_by(ReleaseDecision.id)
    )
    if model is not None:
        query = query.where(ReleaseRequest.model == model)
    if request_id is not None:
        query = query.where(ReleaseDecision.request_id == request_id)
    return [decision_record(d, r) for d, r in session.execute(query).tuples()]


def approved_request_for(
    session: Session, model: str, version: str, environment: str
) -> ReleaseRequest | None:
    """The approved request that made `version` champion, locked for the rollback."""
    return session.scalar(
        select(ReleaseRequest)
        .where(
            ReleaseRequest.model == model,
            ReleaseRequest.version == version,
            ReleaseRequest.environment == environment,
            ReleaseRequest.state == "approved",
        )
        .with_for_update()
    )


def approval_of(session: Session, request: ReleaseRequest) -> ReleaseDecision | None:
    """The decision that approved `request` (it says which champion it replaced)."""
    return session.scalar(
        select(ReleaseDecision)
        .where(ReleaseDecision.request_id == request.id, ReleaseDecision.action == "approve")
        .order_by(ReleaseDecision.id.desc())
    )


def replaced_by_approval(
    session: Session, model: str, version: str, environment: str
) -> str | None:
    """Which champion the approval of `version` replaced, if `version` came by an approval."""
    row = session.scalar(
        select(ReleaseDecision.alias_from)
        .join(ReleaseRequest, ReleaseDecision.request_id == ReleaseRequest.id)
        .where(
            ReleaseRequest.model == model,
            ReleaseRequest.version == version,
            ReleaseRequest.environment == environment,
            ReleaseDecision.action == "approve",
        )
        .order_by(ReleaseDecision.id.desc())
    )
    return row
