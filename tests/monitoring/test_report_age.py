"""The report's model age (the serving champion's, the newest version's beside it) and the
numbers beside accuracy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelcycle.monitoring.report import ModelReport
from modelcycle.registry.ages import ModelAge
from modelcycle.store.evaluations import DailyAccuracy

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _report(age: ModelAge | None) -> ModelReport:
    return ModelReport(model="m", daily=[], accuracy_7d_avg=None, age=age, drift=None)


def test_an_old_champion_is_flagged_even_when_a_fresh_version_waits() -> None:
    report = _report(
        ModelAge(
            champion=("1", NOW - timedelta(hours=52)),
            newest=("8", NOW - timedelta(minutes=6)),
        )
    )
    assert report.age_line(NOW) == "champion v1 trained 52.0 h ago (over 36 h); newest v8 0.1 h ago"
    data = report.to_json_dict(NOW)
    assert (data["champion_version"], data["model_age_hours"], data["stale"]) == ("1", 52.0, True)
    assert (data["newest_version"], data["newest_age_hours"]) == ("8", 0.1)


def test_a_young_champion_is_not_flagged() -> None:
    trained = NOW - timedelta(hours=5)
    report = _report(ModelAge(champion=("3", trained), newest=("3", trained)))
    assert report.age_line(NOW) == "champion v3 trained 5.0 h ago; newest v3 5.0 h ago"
    assert report.to_json_dict(NOW)["stale"] is False


def test_a_model_without_a_champion_or_versions_says_so() -> None:
    no_champion = _report(ModelAge(champion=None, newest=("2", NOW - timedelta(hours=1))))
    assert no_champion.age_line(NOW) == "no champion; newest v2 1.0 h ago"
    assert _report(None).age_line(NOW) == "no registered version"


def test_f1_and_pr_auc_average_over_the_same_7_days_as_accuracy() -> None:
    def evaluated(day: int, f1: float, pr_auc: float | None) -> DailyAccuracy:
        moment = NOW.date() - timedelta(days=10 - day)
        return DailyAccuracy(moment, 0.99, "1", 100, 0.99, f1=f1, pr_auc=pr_auc)

    daily = [evaluated(1, 0.0, 0.0), evaluated(8, 0.4, None), evaluated(10, 0.6, 0.5)]
    report = ModelReport("m", daily, 0.99, age=None, drift=None)
    assert report.average_of("f1") == 0.5  # day 1 is outside the 7 days
    assert report.average_of("pr_auc") == 0.5  # a day without PR-AUC is left out
