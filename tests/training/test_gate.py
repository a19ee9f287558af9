"""The model gate: a new version may not be worse than the champion by more than the margin."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from modelcycle.settings import Settings
from modelcycle.training.gate import GateResult, judge


def gate(
    new: dict[str, float], champion: dict[str, float] | None, version: str | None, margin: float
) -> GateResult:
    return judge("fault-classifier", "4", new, champion, version, margin)


def test_a_version_as_good_as_the_champion_passes() -> None:
    verdict = gate(
        {"accuracy": 0.95, "pr_auc": 0.60}, {"accuracy": 0.96, "pr_auc": 0.61}, "3", 0.02
    )
    assert verdict.passed
    assert "champion v3" in verdict.reason


def test_a_version_worse_by_more_than_the_margin_fails_and_says_on_what() -> None:
    verdict = gate(
        {"accuracy": 0.95, "pr_auc": 0.40}, {"accuracy": 0.95, "pr_auc": 0.60}, "3", 0.02
    )
    assert not verdict.passed
    assert verdict.reason.startswith("pr_auc 0.400 < champion v3's 0.600")


def test_a_missing_metric_fails_the_new_version_but_is_skipped_on_the_champion() -> None:
    assert not gate(
        {"accuracy": 0.95, "pr_auc": math.nan}, {"accuracy": 0.9, "pr_auc": 0.5}, "1", 0.02
    ).passed
    assert gate(
        {"accuracy": 0.95, "pr_auc": math.nan}, {"accuracy": 0.9, "pr_auc": math.nan}, "1", 0.02
    ).passed


def test_without_a_comparable_champion_the_gate_passes() -> None:
    assert gate({"accuracy": 0.5}, None, None, 0.02).reason == "no champion yet"
    assert gate({"accuracy": 0.5}, None, "2", 0.02).reason == "no comparable champion"


def test_the_verdict_carries_its_evidence_as_json() -> None:
    """A release request attaches the verdict: names, numbers and the reason, as plain JSON."""
    verdict = gate({"accuracy": 0.9, "pr_auc": math.nan}, {"accuracy": 0.95}, "3", 0.02)
    document = json.loads(json.dumps(verdict.as_dict(), allow_nan=False))
    assert document == {
        "name": "fault-classifier",
        "version": "4",
        "passed": False,
        "reason": "accuracy 0.900 < champion v3's 0.950 − 0.02",
        "margin": 0.02,
        "challenger_metrics": {"accuracy": 0.9, "pr_auc": None},
        "champion_version": "3",
        "champion_metrics": {"accuracy": 0.95},
        "gated_metrics": ["accuracy", "pr_auc"],
    }


def test_the_gate_compares_the_configured_metrics() -> None:
    """A version as accurate as the champion but that misses faults fails a gate on F1."""
    new = {"accuracy": 0.99, "pr_auc": 0.61, "f1": 0.10}
    champion = {"accuracy": 0.99, "pr_auc": 0.60, "f1": 0.55}
    assert gate(new, champion, "3", 0.02).passed  # the default: accuracy and PR-AUC
    settings = Settings(gate_metrics="accuracy, f1")
    verdict = judge("fault-classifier", "4", new, champion, "3", 0.02, settings.gated_metrics)
    assert not verdict.passed
    assert verdict.reason == "f1 0.100 < champion v3's 0.550 − 0.02"
    assert verdict.as_dict()["gated_metrics"] == ["accuracy", "f1"]


def test_an_unknown_gate_metric_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_GATE_METRICS", "accuracy,acuracy")
    with pytest.raises(ValidationError, match="unknown metric 'acuracy'"):
        Settings()
    assert Settings(gate_metrics="pr_auc").gated_metrics == ("pr_auc",)
