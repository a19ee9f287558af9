"""The gates the daily job attaches: what a person reads on the request, and what blocks it."""

from __future__ import annotations

from datetime import date, timedelta

from modelcycle.release.daily_gates import daily_gates
from modelcycle.release.rules import GateResult, auto_approves

WINDOW = [date(2026, 1, 1) + timedelta(days=n) for n in range(3)]
CUSTOMERS = GateResult("customers", True, "no champion to compare with")
PASSED_METRIC = {
    "name": "m",
    "passed": True,
    "reason": "not worse than champion v1",
    "margin": 0.02,
}


def _gates(**changes: object) -> dict[str, tuple[bool, str]]:
    arguments: dict[str, object] = {
        "metric_verdict": PASSED_METRIC,
        "window": WINDOW,
        "quality": dict.fromkeys(WINDOW, True),
        "parity_difference": 1e-7,
        "trained_sha256": "ab" * 32,
        "recorded_sha256": "ab" * 32,
        "customers": CUSTOMERS,
        **changes,
    }
    gates = daily_gates(**arguments)  # type: ignore[arg-type]
    return {g.name: (g.passed, g.detail) for g in gates}


def test_a_clean_challenger_passes_every_gate_and_the_local_policy_approves_it() -> None:
    gates = _gates()
    assert list(gates) == [
        "metric",
        "recent_days",
        "customers",
        "data_quality",
        "onnx_parity",
        "artifact_hash",
    ]
    assert all(passed for passed, _ in gates.values())
    assert gates["data_quality"][1] == "data_quality passed on every day 2026-01-01 … 2026-01-03"
    clean = daily_gates(
        metric_verdict=PASSED_METRIC,
        window=WINDOW,
        quality=dict.fromkeys(WINDOW, True),
        parity_difference=1e-7,
        trained_sha256="ab" * 32,
        recorded_sha256="ab" * 32,
        customers=CUSTOMERS,
    )
    assert auto_approves(clean, auto_approve=True)
    assert not auto_approves(clean, auto_approve=False)  # prod: a person decides


def test_a_bad_or_unchecked_day_of_the_window_fails_the_data_quality_gate_naming_it() -> None:
    quality = {WINDOW[0]: True, WINDOW[1]: False}
    passed, detail = _gates(quality=quality)["data_quality"]
    assert not passed
    assert detail == ("data_quality failed on 2026-01-02; no data_quality result for 2026-01-03")


def test_a_refused_metric_a_missing_parity_or_a_different_hash_each_fail_their_gate() -> None:
    refused = {**PASSED_METRIC, "passed": False, "reason": "pr_auc 0.700 < champion v1's 0.780"}
    gates = _gates(metric_verdict=refused, parity_difference=None, recorded_sha256="cd" * 32)
    assert gates["metric"] == (False, "pr_auc 0.700 < champion v1's 0.780")
    assert gates["onnx_parity"] == (False, "no ONNX parity difference recorded")
    assert not gates["artifact_hash"][0]
    assert "is not the trained artifact's" in gates["artifact_hash"][1]
    assert _gates(recorded_sha256=None)["artifact_hash"] == (
        False,
        "no artifact hash recorded on the version",
    )


def test_a_customers_comparison_training_did_not_record_fails_the_customers_gate() -> None:
    assert _gates(customers=None)["customers"] == (False, "no per-customer comparison recorded")
