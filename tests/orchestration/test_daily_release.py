"""The daily job opens each challenger's release request: the policy moves `champion` in local,
a failed gate stops only that challenger, and a retried step opens nothing twice."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from modelcycle.orchestration.definitions import build_definitions
from modelcycle.orchestration.keys import CLASSIFIER_KEY, GATE_CHECK, RELEASE_KEYS
from modelcycle.orchestration.sensors import DAILY_JOB
from modelcycle.release.service import open_releases
from modelcycle.settings import Settings
from modelcycle.training import gate
from tests.orchestration.small_fleet import small_fleet_env
from tests.support.receivers import HttpReceiver
from tests.support.registry import server_client
from tests.support.servers import MlflowServer, unique_name

pytestmark = pytest.mark.slow

LAKE_ONLY = [dg.AssetKey("readings"), dg.AssetKey("features")]
CLASSIFIER_RELEASE = RELEASE_KEYS[CLASSIFIER_KEY]


@dataclasses.dataclass(frozen=True)
class Daily:
    env: dict[str, str]
    classifier: str

    def defs(self) -> dg.Definitions:
        return build_definitions(Settings())


@pytest.fixture
def daily(
    tmp_path: Path, mlflow_sqlite_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daily]:
    prefix = unique_name("release")
    env = small_fleet_env(tmp_path, mlflow_sqlite_server, prefix, monkeypatch)
    yield Daily(env=env, classifier=Settings().classifier_model_name)


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, day: str, selection: Any = None
) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False, asset_selection=selection
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _two_trained_days(daily: Daily, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Day 1 to the lake; day 2 trains version 1 (champion: there was none); day 3 version 2."""
    defs = daily.defs()
    _run(defs, instance, "2026-01-01", LAKE_ONLY)
    _run(defs, instance, "2026-01-02")
    return _run(defs, instance, "2026-01-03")


def _metadata(instance: dg.DagsterInstance, key: dg.AssetKey, day: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    assert records and records[0].asset_materialization is not None, f"{key} not on {day}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _champion(daily: Daily) -> str:
    model = server_client(daily.env["MODELCYCLE_TRACKING_URI"]).get_registered_model(
        daily.classifier
    )
    return str(model.aliases["champion"])


GATES = ("metric", "recent_days", "customers", "data_quality", "onnx_parity", "artifact_hash")


def test_in_local_a_passing_challenger_becomes_champion_and_scores_its_own_day(
    daily: Daily,
) -> None:
    with dg.instance_for_test() as instance:
        _two_trained_days(daily, instance)
        release = _metadata(instance, CLASSIFIER_RELEASE, "2026-01-03")
        assert release["version"] == "2"
        for name in GATES:
            assert release[f"gate {name}"].startswith("passed"), release[f"gate {name}"]
        # version 2's held-out rows, by customer, scored by champion v1 and by v2
        assert release["gate customers"].startswith("passed: no customer worse by more than 0.05")
        assert release["state"] == "approved"
        assert release["approved_by_system"] is True
        assert release["champion"] == "2"
        assert _champion(daily) == "2"
        scores = _metadata(instance, dg.AssetKey("scores"), "2026-01-03")
        assert scores[f"{daily.classifier} version"] == "2"

        # the release step retried (or the day re-run from it): nothing opened or decided twice
        _run(daily.defs(), instance, "2026-01-03", list(RELEASE_KEYS.values()))
    with open_releases(Settings()) as releases:
        requests = releases.requests(daily.classifier)
        assert [(r.version, r.state) for r in requests] == [("2", "approved"), ("1", "approved")]
        trail = [(d.version, d.action) for d in releases.history(daily.classifier)]
    assert trail.count(("2", "approve")) == 1
    assert trail.count(("2", "open")) == 1


def test_a_refused_challenger_keeps_the_champion_which_is_still_scored_and_watched(
    daily: Daily, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_judge = gate.judge

    def refusing_judge(*args: Any, **kwargs: Any) -> gate.GateResult:
        verdict = real_judge(*args, **kwargs)
        if verdict.version != "2":
            return verdict
        return dataclasses.replace(verdict, passed=False, reason="pr_auc fell 0.08 > margin 0.05")

    monkeypatch.setattr("modelcycle.orchestration.training.judge", refusing_judge)
    with dg.instance_for_test() as instance:
        result = _two_trained_days(daily, instance)
        (check,) = [
            e
            for e in result.get_asset_check_evaluations()
            if e.check_name == GATE_CHECK and e.asset_key == CLASSIFIER_KEY
        ]
        assert not check.passed
        release = _metadata(instance, CLASSIFIER_RELEASE, "2026-01-03")
        assert release["state"] == "pending"
        assert release["gate metric"] == "FAILED: pr_auc fell 0.08 > margin 0.05"
        assert release["champion"] == "1"
        assert _champion(daily) == "1"
        # the champion that keeps serving is scored and watched on the day its challenger failed
        scores = _metadata(instance, dg.AssetKey("scores"), "2026-01-03")
        assert scores[f"{daily.classifier} version"] == "1"
        _metadata(instance, dg.AssetKey("alerts"), "2026-01-03")


def test_with_a_person_to_approve_the_request_waits_and_approvers_hear_of_it(
    daily: Daily, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELCYCLE_RELEASE_AUTO_APPROVE", "false")
    monkeypatch.setenv("MODELCYCLE_PUBLIC_URL", "https://models.example.com")
    with HttpReceiver() as receiver, dg.instance_for_test() as instance:
        rules = tmp_path / "alerts.yaml"
        rules.write_text(f"channels:\n  approvers:\n    type: webhook\n    url: {receiver.url}\n")
        monkeypatch.setenv("MODELCYCLE_ALERT_RULES", str(rules))
        _two_trained_days(daily, instance)
        release = _metadata(instance, CLASSIFIER_RELEASE, "2026-01-03")
        assert release["state"] == "pending"
        assert release["gates_passed"] is True
        assert release["approved_by_system"] is False
        assert release["approvers_notified"] == "approvers ok"
        assert _champion(daily) == "1"

        # a retried release step notifies no one twice
        _run(daily.defs(), instance, "2026-01-03", list(RELEASE_KEYS.values()))
        bodies = [json.loads(r.body) for r in receiver.requests]
    waiting = [b for b in bodies if b["event"] == "approval_needed"]
    mine = [b for b in waiting if b["details"]["model"] == daily.classifier]
    versions = sorted(b["details"]["version"] for b in mine)
    assert versions == ["2"], bodies  # v1 became champion on registration: nothing to approve
    link = f"https://models.example.com/v1/releases/{release['request_id']}"
    assert mine[0]["details"]["link"] == link
    assert link in mine[0]["summary"]
