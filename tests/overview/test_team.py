"""The overview's pure parts: the chart's 7-day line and the marks where the champion changed."""

from __future__ import annotations

from datetime import date

import pytest

from modelcycle.overview.team import rolling_average, version_changes
from modelcycle.store.evaluations import DailyAccuracy


def _day(n: int, accuracy: float, version: str) -> DailyAccuracy:
    return DailyAccuracy(date(2026, 1, n), accuracy, version, 100, accuracy)


def test_a_model_never_evaluated_has_no_points_and_no_marks() -> None:
    assert rolling_average([]) == [] and version_changes([]) == []


def test_the_7_day_line_averages_the_calendar_week_ending_each_day() -> None:
    daily = [_day(1, 0.8, "1"), _day(2, 1.0, "1"), _day(9, 0.6, "2"), _day(10, 0.7, "2")]
    assert rolling_average(daily) == pytest.approx([0.8, 0.9, 0.6, 0.65])


def test_each_version_change_is_marked_once_on_its_first_day() -> None:
    daily = [_day(1, 0.8, "1"), _day(2, 0.8, "1"), _day(3, 0.9, "2"), _day(4, 0.9, "2")]
    assert version_changes(daily) == [
        {"day": "2026-01-01", "version": "1"},
        {"day": "2026-01-03", "version": "2"},
    ]
