"""When the daily job starts: the schedule runs the day before, once, from the configured day on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from modelcycle.orchestration.definitions import build_definitions
from modelcycle.orchestration.sensors import DAILY_JOB
from modelcycle.settings import Settings


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(Settings(orchestration_start=date(2026, 1, 1), schedule_time="03:30"))


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, at: datetime) -> list[str] | str:
    schedule = defs.resolve_schedule_def("daily_at_schedule_time")
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
    )
    data = schedule.evaluate_tick(context)
    if data.skip_message:
        return data.skip_message
    return [request.partition_key or "" for request in data.run_requests or []]


def test_the_schedule_runs_yesterday_on_by_default_at_the_configured_time(
    defs: dg.Definitions,
) -> None:
    schedule = defs.resolve_schedule_def("daily_at_schedule_time")
    assert schedule.cron_schedule == "30 3 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance:
        assert _tick(defs, instance, datetime(2026, 3, 5, 3, 30, tzinfo=UTC)) == ["2026-03-04"]


def test_the_schedule_skips_a_day_that_already_ran_or_is_before_the_start(
    defs: dg.Definitions,
) -> None:
    with dg.instance_for_test() as instance:
        create_run_for_test(
            instance,
            job_name=DAILY_JOB,
            status=dg.DagsterRunStatus.SUCCESS,
            tags={"dagster/partition": "2026-03-04"},
        )
        skipped = _tick(defs, instance, datetime(2026, 3, 5, 3, 30, tzinfo=UTC))
        assert skipped == "2026-03-04 already ran (started by the sensor or by hand)"

        create_run_for_test(
            instance,
            job_name=DAILY_JOB,
            status=dg.DagsterRunStatus.FAILURE,
            tags={"dagster/partition": "2026-03-05"},
        )  # a failed day may run again
        assert _tick(defs, instance, datetime(2026, 3, 6, 3, 30, tzinfo=UTC)) == ["2026-03-05"]

        early = _tick(defs, instance, datetime(2026, 1, 1, 3, 30, tzinfo=UTC))
        assert isinstance(early, str) and "before MODELCYCLE_ORCHESTRATION_START" in early


def test_the_sensors_that_alert_are_on_and_the_log_sensor_is_opt_in(
    defs: dg.Definitions,
) -> None:
    status = {s.name: s.default_status for s in defs.sensors or []}
    assert status == {
        "complete_log_days": dg.DefaultSensorStatus.STOPPED,
        "record_failed_runs": dg.DefaultSensorStatus.RUNNING,
        "alert_clock": dg.DefaultSensorStatus.RUNNING,
    }
