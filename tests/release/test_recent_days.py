"""The recent-days gate: the challenger may not be worse than the champion on the latest days."""

from __future__ import annotations

from datetime import date, timedelta

from modelcycle.release.recent_days import recent_days_gate
from modelcycle.store.evaluations import VersionDay

DAY = date(2026, 3, 1)
METRICS = ("accuracy", "pr_auc")


def _day(n: int, version: str, accuracy: float, pr_auc: float | None = 0.8) -> VersionDay:
    role = "champion" if version == "1" else "challenger"
    return VersionDay(DAY + timedelta(days=n), version, role, 100, accuracy, 0.5, pr_auc, None)


def _gate(history: list[VersionDay], champion: str | None = "1") -> tuple[bool, str]:
    gate = recent_days_gate(
        history, champion=champion, challenger="2", margin=0.02, metrics=METRICS
    )
    assert gate.name == "recent_days"
    return gate.passed, gate.detail


def test_without_days_evaluated_by_both_the_gate_passes_and_says_so() -> None:
    history = [_day(0, "1", 0.9), _day(1, "2", 0.5)]  # never the same day
    assert _gate(history) == (True, "no evaluated days in common yet")
    assert _gate([], champion=None) == (True, "no other champion to compare with")


def test_a_challenger_as_good_on_average_over_the_common_days_passes() -> None:
    history = [_day(n, v, a) for n in range(3) for v, a in (("1", 0.90), ("2", 0.89))]
    passed, detail = _gate(history)
    assert passed
    assert detail == (
        "over 3 day(s) 2026-03-01 … 2026-03-03: accuracy, pr_auc not worse than champion v1 "
        "by more than 0.02"
    )


def test_a_challenger_worse_on_the_last_seven_common_days_fails_naming_the_metric() -> None:
    # better long ago, worse on the 7 most recent days: only those count
    old = [_day(n, v, a) for n in range(5) for v, a in (("1", 0.70), ("2", 0.99))]
    recent = [_day(n, v, a) for n in range(5, 12) for v, a in (("1", 0.90), ("2", 0.80))]
    passed, detail = _gate(old + recent)
    assert not passed
    assert detail == (
        "over 7 day(s) 2026-03-06 … 2026-03-12: accuracy 0.800 < champion v1's 0.900 − 0.02"
    )


def test_a_metric_the_champion_never_measured_is_not_held_against_the_challenger() -> None:
    history = [_day(0, "1", 0.9, pr_auc=None), _day(0, "2", 0.9, pr_auc=0.1)]
    assert _gate(history)[0]
