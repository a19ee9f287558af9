"""Release requests and decisions: who may decide what, and what the registry and trail show."""

from __future__ import annotations

import json
import threading

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import delete, update

from modelcycle.access.identity import SYSTEM, Identity
from modelcycle.errors import ConflictError, DataNotFoundError, InvalidInputError, NotPermittedError
from modelcycle.release.rules import DecisionRecord, metric_gate
from modelcycle.release.service import Releases
from modelcycle.store import Store
from modelcycle.store.tables import ReleaseDecision
from modelcycle.training.gate import judge
from tests.release.conftest import (
    GATES_FAILED,
    GATES_PASSED,
    aliases,
    register_versions,
    releases_for,
)


def test_an_approver_moves_champion_and_the_old_one_keeps_previous(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 2)
    request = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
    )
    assert request.state == "pending"  # prod: a person decides
    assert aliases(client, model_name) == {"champion": "1"}

    decision = releases.approve(request.id, actor=people["alice"], comment="better recall")

    assert aliases(client, model_name) == {"champion": "2", "previous": "1"}
    assert (decision.alias_from, decision.alias_to) == ("1", "2")
    tags = client.get_model_version(model_name, "2").tags
    assert tags["modelcycle.release.decided_by"] == "alice (person)"
    assert tags["modelcycle.release.comment"] == "better recall"
    assert tags["modelcycle.release.request_id"] == str(request.id)
    assert json.loads(tags["modelcycle.release.gates"]) == {"metric": True, "onnx_parity": True}
    assert releases.get(request.id)[0].state == "approved"
    trail = [(d.action, d.actor) for d in releases.history(model_name)]
    assert trail == [("open", "otto"), ("approve", "alice")]


def test_nobody_below_approver_and_not_the_requester_may_approve(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 2)
    request = releases.open(
        model=model_name, version="2", requested_by=people["alice"], gates=GATES_PASSED
    )
    for who in ("vera", "otto"):
        with pytest.raises(NotPermittedError, match="needs the approver role"):
            releases.approve(request.id, actor=people[who])
    with pytest.raises(NotPermittedError, match="alice requested release"):
        releases.approve(request.id, actor=people["alice"])
    assert aliases(client, model_name) == {"champion": "1"}
    assert [d.action for d in releases.history(model_name)] == ["open"]


def test_a_failed_gate_blocks_approval_unless_an_admin_overrides_with_a_reason(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 2)
    request = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_FAILED
    )
    with pytest.raises(NotPermittedError, match="failed gate"):
        releases.approve(request.id, actor=people["alice"])
    with pytest.raises(NotPermittedError, match="needs the admin role"):
        releases.approve(request.id, actor=people["alice"], override_reason="hotfix")
    decision = releases.approve(
        request.id, actor=people["root"], comment="ok", override_reason="the metric is noisy today"
    )
    assert decision.override_reason == "the metric is noisy today"
    tags = client.get_model_version(model_name, "2").tags
    assert tags["modelcycle.release.override_reason"] == "the metric is noisy today"
    assert aliases(client, model_name)["champion"] == "2"


def test_only_a_pending_request_is_decided_and_unknown_ids_are_named(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 3)
    first = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
    )
    second = releases.open(
        model=model_name, version="3", requested_by=people["otto"], gates=GATES_PASSED
    )
    assert releases.get(first.id)[0].state == "superseded"
    (supersede,) = [d for d in releases.history(model_name) if d.action == "supersede"]
    assert supersede.actor == SYSTEM.name and supersede.request_id == first.id
    with pytest.raises(ConflictError, match=f"release request {first.id} is superseded"):
        releases.approve(first.id, actor=people["alice"])

    releases.reject(second.id, actor=people["alice"], comment="not this week")
    with pytest.raises(ConflictError, match="is rejected"):
        releases.approve(second.id, actor=people["bob"])
    assert aliases(client, model_name) == {"champion": "1"}
    tags = client.get_model_version(model_name, "3").tags
    assert tags["modelcycle.release.decision"] == "reject"

    with pytest.raises(DataNotFoundError, match="no release request 999"):
        releases.approve(999, actor=people["alice"])
    with pytest.raises(InvalidInputError, match="at most 2000"):
        releases.reject(second.id, actor=people["alice"], comment="x" * 2001)


def test_the_same_version_opened_twice_is_one_request(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    """A retried daily run opens nothing new."""
    register_versions(client, model_name, 2)
    once = releases.open(model=model_name, version="2", requested_by=SYSTEM, gates=GATES_PASSED)
    again = releases.open(model=model_name, version="2", requested_by=SYSTEM, gates=GATES_PASSED)
    assert once.id == again.id
    assert len(releases.requests(model_name)) == 1


def test_the_dev_policy_approves_a_request_whose_gates_all_pass_as_the_system(
    store: Store, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    dev = releases_for(store, client, auto_approve=True, environment="dev")
    register_versions(client, model_name, 3)
    passed = dev.open(model=model_name, version="2", requested_by=SYSTEM, gates=GATES_PASSED)
    assert passed.state == "approved"
    failed = dev.open(model=model_name, version="3", requested_by=SYSTEM, gates=GATES_FAILED)
    assert failed.state == "pending"  # a gate stopped it: it waits for an admin
    assert aliases(client, model_name) == {"champion": "2", "previous": "1"}
    approvals = [d for d in dev.history(model_name) if d.action == "approve"]
    assert [(d.actor, d.actor_kind) for d in approvals] == [("system", "system")]


def test_rollback_returns_champion_to_the_version_before_in_one_audited_step(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 3)
    for version in ("2", "3"):
        request = releases.open(
            model=model_name, version=version, requested_by=people["otto"], gates=GATES_PASSED
        )
        releases.approve(request.id, actor=people["alice"])
    assert aliases(client, model_name) == {"champion": "3", "previous": "2"}

    with pytest.raises(NotPermittedError, match="admin"):
        releases.rollback(model_name, actor=people["alice"])
    decision = releases.rollback(model_name, actor=people["root"], comment="alerts fired")

    assert aliases(client, model_name) == {"champion": "2", "previous": "1"}
    assert (decision.alias_from, decision.alias_to) == ("3", "2")
    assert [r.state for r in releases.requests(model_name)] == ["rolled_back", "approved"]
    releases.rollback(model_name, actor=people["root"])
    assert aliases(client, model_name) == {"champion": "1"}
    with pytest.raises(ConflictError, match="no release to roll back"):
        releases.rollback(model_name, actor=people["root"])


def test_the_trail_cannot_be_changed_or_deleted_in_the_database(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 2)
    releases.open(model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED)
    for statement in (
        update(ReleaseDecision).values(actor="mallory"),
        delete(ReleaseDecision),
    ):
        with pytest.raises(Exception, match="append-only"), releases.store.session() as session:
            session.execute(statement)
    assert [d.actor for d in releases.history(model_name)] == ["otto"]


def test_two_approvals_of_one_model_at_once_record_the_moves_as_they_happened(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    register_versions(client, model_name, 3)
    # the newer one first, so that neither supersedes the other
    requests = [
        releases.open(model=model_name, version=v, requested_by=people["otto"], gates=GATES_PASSED)
        for v in ("3", "2")
    ]
    start = threading.Barrier(2)
    decided: list[DecisionRecord] = []

    def approve(request_id: int, approver: str) -> None:
        start.wait()
        decided.append(releases.approve(request_id, actor=people[approver]))

    threads = [
        threading.Thread(target=approve, args=(r.id, who))
        for r, who in zip(requests, ("alice", "bob"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    first, second = decided
    assert first.alias_from == "1" and second.alias_from == first.alias_to
    assert aliases(client, model_name) == {
        "champion": second.alias_to,
        "previous": first.alias_to,
    }


def test_the_metric_gates_verdict_is_carried_as_the_metric_gate(
    releases: Releases, client: MlflowClient, model_name: str, people: dict[str, Identity]
) -> None:
    verdict = judge(
        model_name,
        "2",
        {"accuracy": 0.9, "pr_auc": 0.5},
        {"accuracy": 0.9, "pr_auc": 0.7},
        "1",
        0.02,
    )
    register_versions(client, model_name, 2)
    request = releases.open(
        model=model_name,
        version="2",
        requested_by=people["otto"],
        gates=[metric_gate(verdict.as_dict())],
    )
    (gate,) = request.gates
    assert (gate.name, gate.passed) == ("metric", False)
    assert "pr_auc 0.500 < champion v1's 0.700" in gate.detail
    assert gate.values["champion_metrics"] == {"accuracy": 0.9, "pr_auc": 0.7}
    with pytest.raises(NotPermittedError, match="failed gate"):
        releases.approve(request.id, actor=people["alice"])
