"""Release decisions in the store and the registry together, or not at all.

A decision is appended and flushed in a store transaction that is not committed yet; then the
registry writes are made (`registry.apply` undoes them itself if one fails, and the transaction
is rolled back); then the transaction is committed, and if the commit fails the registry writes
are undone. So the audit row and the alias move are both there or neither is. Should the undo
itself be impossible (MLflow down for good), the move's journal on the registered model lets the
next decision on that model finish it, before it reads the aliases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.orm import Session

from modelcycle.access.identity import SYSTEM, Identity, Role
from modelcycle.errors import (
    ConflictError,
    DataNotFoundError,
    NotPermittedError,
    RegistryError,
    StorageError,
)
from modelcycle.registry.connection import first_line
from modelcycle.release import requests as stored
from modelcycle.release.registry import (
    REGISTRY_FAILURES,
    RESTORE_SECONDS,
    TAG_PREFIX,
    Move,
    RegistryHalfChangedError,
    ReleaseRegistry,
    journal_entry,
    prepare,
    read_journal,
    undo,
)
from modelcycle.release.registry import apply as apply_move
from modelcycle.release.rules import (
    CHAMPION,
    AliasPlan,
    DecisionRecord,
    GateResult,
    ReleaseRecord,
    approval_plan,
    auto_approves,
    check_comment,
    check_may_decide,
    parse_gates,
    rollback_plan,
)
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore
from modelcycle.store import Store

if TYPE_CHECKING:
    from modelcycle.release.compare import VersionFacts

log = structlog.get_logger(__name__)

_LEADS_TO = {"approve": "approved", "reject": "rejected", "rollback": "rolled_back"}


@dataclass(frozen=True)
class Releases:
    """What a decision needs: the store, the registry, and the environment's policy."""

    store: Store
    registry: ReleaseRegistry
    environment: str
    auto_approve: bool
    restore_seconds: float = RESTORE_SECONDS
    lake: ObjectStore | None = None  # the shadow log's live traffic, in comparisons
    # Called after every decision's registry move, done or undone (the dashboard's reads go stale).
    on_registry_moved: Callable[[], None] | None = None

    # --- reading -------------------------------------------------------------------------

    def requests(self, model: str | None = None, state: str | None = None) -> list[ReleaseRecord]:
        with self.store.session() as session:
            return stored.list_requests(
                session=session, model=model, state=state, environment=self.environment
            )

    def get(self, request_id: int) -> tuple[ReleaseRecord, list[DecisionRecord]]:
        with self.store.session() as session:
            record = stored.get_request(session=session, request_id=request_id)
            return record, stored.decisions(session=session, request_id=request_id)

    def history(self, model: str | None = None) -> list[DecisionRecord]:
        with self.store.session() as session:
            return stored.decisions(session=session, model=model)

    def compare(
        self,
        model: str,
        a: str,
        b: str,
        *,
        facts_of: Callable[[str, str], VersionFacts] | None = None,
    ) -> dict[str, Any]:
        """The two versions side by side, with the gate results of their release requests and,
        when the API shadowed one with the other, how they scored the same live requests.
        `facts_of`: where a version's facts come from (the dashboard's kept reads); the registry."""
        from modelcycle.release.compare import decision_threshold, facts, side_by_side
        from modelcycle.release.live import live_traffic

        if facts_of is None:
            facts_of = partial(facts, self.registry.client)
        first, second = facts_of(model, a), facts_of(model, b)
        by_version = {r.version: r for r in self.requests(model) if r.version in (a, b)}
        comparison = side_by_side(
            model, first, second, {v: by_version.get(v) for v in (first.version, second.version)}
        )
        if self.lake is not None:
            thresholds = (decision_threshold(first), decision_threshold(second))
            comparison["live"] = live_traffic(
                self.lake, model, first.version, second.version, thresholds
            )
        return comparison

    # --- deciding ------------------------------------------------------------------------

    def open(
        self,
        *,
        model: str,
        version: str,
        requested_by: Identity,
        gates: Sequence[Mapping[str, Any] | GateResult],
        lineage: Mapping[str, Any] | None = None,
        comment: str = "",
    ) -> ReleaseRecord:
        """Open a request for a registered challenger (superseding older pending ones); the
        system approves it at once when the policy auto-approves and every gate passed.
        `comment` is kept on the request's first decision, `open`."""
        if not requested_by.may(Role.OPERATOR):
            raise NotPermittedError(
                f"opening a release needs the operator role; {requested_by.name} is "
                f"{requested_by.role.value}"
            )
        parsed = parse_gates(gates)
        self.registry.version_tags(model, version)  # the version must exist
        with self.store.session() as session:
            record, superseded = stored.add_request(
                session=session,
                model=model,
                version=version,
                requested_by=requested_by,
                gates=parsed,
                environment=self.environment,
                lineage=dict(lineage or {}),
                comment=comment,
            )
        for old in superseded:
            log.info("release superseded", model=model, request=old.id, by=record.id)
        if record.state == "pending" and auto_approves(parsed, auto_approve=self.auto_approve):
            self.approve(record.id, actor=SYSTEM, comment="all gates passed: approved by policy")
            record = self.get(record.id)[0]
        return record

    def approve(
        self,
        request_id: int,
        *,
        actor: Identity,
        comment: str | None = None,
        override_reason: str | None = None,
    ) -> DecisionRecord:
        """`champion` to the request's version, the old one to `previous`, and the decision."""
        text = check_comment(comment)

        def decide(session: Session) -> tuple[DecisionRecord, Move]:
            request = stored.find_request(session, request_id, for_update=True)
            self._one_at_a_time(session, request.model)
            reason = check_may_decide(
                request_id=request.id,
                state=request.state,
                requested_by=request.requested_by,
                actor=actor,
                action="approve",
                gates=parse_gates(request.gate_results),
                override_reason=override_reason,
            )
            plan = approval_plan(
                request.model, self.registry.aliases(request.model), request.version
            )
            decision = stored.append_decision(
                session,
                request,
                action="approve",
                actor=actor,
                new_state="approved",
                comment=text,
                alias_from=plan.before[CHAMPION],
                alias_to=request.version,
                override_reason=reason,
            )
            return decision, self._move(plan, decision)

        return self._decide(decide)

    def reject(
        self, request_id: int, *, actor: Identity, comment: str | None = None
    ) -> DecisionRecord:
        """The request ends rejected; `champion` does not move. The decision is tagged too."""
        text = check_comment(comment)

        def decide(session: Session) -> tuple[DecisionRecord, Move]:
            request = stored.find_request(session, request_id, for_update=True)
            self._one_at_a_time(session, request.model)
            check_may_decide(
                request_id=request.id,
                state=request.state,
                requested_by=request.requested_by,
                actor=actor,
                action="reject",
                gates=parse_gates(request.gate_results),
                override_reason=None,
            )
            decision = stored.append_decision(
                session, request, action="reject", actor=actor, new_state="rejected", comment=text
            )
            still = AliasPlan(request.model, {}, {})
            return decision, self._move(still, decision)

        return self._decide(decide)

    def rollback(
        self, model: str, *, actor: Identity, comment: str | None = None
    ) -> DecisionRecord:
        """`champion` back to the version the current one replaced, in one step; the current
        champion's request becomes rolled_back."""
        text = check_comment(comment)
        if not actor.may(Role.ADMIN):
            raise NotPermittedError(
                f"rollback needs the admin role; {actor.name} is {actor.role.value}"
            )

        def decide(session: Session) -> tuple[DecisionRecord, Move]:
            self._one_at_a_time(session, model)
            aliases = self.registry.aliases(model)
            current = aliases[CHAMPION]
            if current is None:
                raise DataNotFoundError(f"{model} has no champion in the registry")
            request = stored.approved_request_for(session, model, current, self.environment)
            if request is None:
                raise ConflictError(
                    f"{model} version {current} is champion without an approved release request "
                    f"in {self.environment}: there is no release to roll back"
                )
            approval = stored.approval_of(session, request)
            target = approval.alias_from if approval is not None else None
            if target is None:
                raise ConflictError(
                    f"{model} version {current} replaced no champion: there is nothing to roll "
                    "back to"
                )
            replaced = stored.replaced_by_approval(session, model, target, self.environment)
            plan = rollback_plan(model, aliases, target, replaced)
            decision = stored.append_decision(
                session,
                request,
                action="rollback",
                actor=actor,
                new_state="rolled_back",
                comment=text,
                alias_from=current,
                alias_to=target,
            )
            return decision, self._move(plan, decision)

        return self._decide(decide)

    # --- the two writes together ---------------------------------------------------------

    def _move(self, plan: AliasPlan, decision: DecisionRecord) -> Move:
        return prepare(self.registry, plan, decision.version, decision_tags(decision))

    def _one_at_a_time(self, session: Session, model: str) -> None:
        """Take the model's decision lock, then finish what a dead decision left in MLflow."""
        stored.one_decision_at_a_time(session, model)
        text = self.registry.journal(model)
        if text is None:
            return
        request_id, state, move, steps = read_journal(model, text)
        if stored.request_state(session, request_id) != state:  # never committed: undo it
            log.warning("undoing a release move left unfinished", model=model, request=request_id)
            undo(self.registry, move, steps, restore_seconds=self.restore_seconds)
        self._clear_journal(model, strict=True)

    def _clear_journal(self, model: str, *, strict: bool = False) -> None:
        try:
            self.registry.set_journal(model, None)
        except REGISTRY_FAILURES as error:
            if strict:
                raise RegistryError(
                    f"clearing the move journal of {model} failed: {first_line(error)}"
                ) from error
            # Harmless: the next decision on the model finds the move committed and clears it.
            log.warning("move journal not cleared", model=model, error=first_line(error))

    def _decide(self, decide: Callable[[Session], tuple[DecisionRecord, Move]]) -> DecisionRecord:
        session = self.store.sessions()
        try:
            with session.begin():
                decision, move = decide(session)
                model = move.plan.model
                entry = journal_entry(
                    move, request_id=decision.request_id, state=_LEADS_TO[decision.action]
                )
                try:
                    self.registry.set_journal(model, entry)
                except REGISTRY_FAILURES as error:
                    raise RegistryError(
                        f"the registry of {model} refused the move ({first_line(error)}); "
                        "nothing was decided"
                    ) from error
                try:
                    apply_move(self.registry, move, restore_seconds=self.restore_seconds)
                except RegistryHalfChangedError:
                    raise  # the journal stays, for the next decision to finish the undo
                except RegistryError:
                    self._clear_journal(model)
                    raise
                try:
                    session.commit()
                except Exception as error:
                    log.error("decision not stored: undoing the registry move", error=str(error))
                    undo(self.registry, move, restore_seconds=self.restore_seconds)
                    self._clear_journal(model)
                    raise StorageError(
                        f"the decision on release {decision.request_id} could not be stored "
                        f"({str(error).splitlines()[0]}); the registry was restored"
                    ) from error
        finally:
            session.close()
            if self.on_registry_moved is not None:
                self.on_registry_moved()
        self._clear_journal(model)
        log.info(
            "release decided",
            request=decision.request_id,
            model=decision.model,
            version=decision.version,
            action=decision.action,
            actor=decision.actor,
            champion_from=decision.alias_from,
            champion_to=decision.alias_to,
        )
        return decision


@contextmanager
def open_releases(settings: Settings) -> Iterator[Releases]:
    """Releases on the configured store and registry, with the environment's policy."""
    from modelcycle.registry.connection import registry_client
    from modelcycle.storage.configured import lake_store
    from modelcycle.store import open_store

    store = open_store(settings)
    try:
        yield Releases(
            store=store,
            registry=ReleaseRegistry(lambda: registry_client(settings)[0]),
            environment=settings.environment,
            auto_approve=settings.resolved_release_auto_approve,
            lake=lake_store(settings),
        )
    finally:
        store.close()


def decision_tags(decision: DecisionRecord) -> dict[str, str]:
    """The decision as tags on the version it concerns, so MLflow's UI shows it too."""
    tags = {
        "request_id": str(decision.request_id),
        "decision": decision.action,
        "decided_by": f"{decision.actor} ({decision.actor_kind})",
        "decided_at": decision.at.isoformat(timespec="seconds"),
        "comment": decision.comment,
        "gates": json.dumps(
            {g["name"]: bool(g.get("passed")) for g in decision.gate_results}, sort_keys=True
        ),
    }
    if decision.alias_to is not None:
        tags["champion_move"] = f"{decision.alias_from or '(none)'} → {decision.alias_to}"
    if decision.override_reason:
        tags["override_reason"] = decision.override_reason
    return {TAG_PREFIX + key: value for key, value in tags.items()}
