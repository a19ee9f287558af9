"""When the daily job runs: a schedule, a sensor for complete log days, and failure alerts."""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg

from modelcycle.lake.fleet import device_ids
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.settings import Settings

DAILY_JOB = "daily_lifecycle"


def _is_day(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return True


def complete_days(modelcycle: ModelcycleResource, after: str | None) -> list[str]:
    """Days in the raw area, after `after`, with a log file for every device of the fleet."""
    raw = modelcycle.raw()
    fleet = device_ids(raw)
    days = sorted({key.split("/")[0] for key in raw.glob("*/device-*.csv")})
    complete = []
    for day in days:
        if after is not None and day <= after:
            continue
        if not _is_day(day):
            continue
        present = {
            key.rsplit("/", 1)[1].removesuffix(".csv") for key in raw.glob(f"{day}/device-*.csv")
        }
        if fleet <= present:
            complete.append(day)
    return complete


def build_automation(settings: Settings, job: Any) -> tuple[list[Any], list[dg.SensorDefinition]]:
    hour, minute = (int(part) for part in settings.schedule_time.split(":"))
    schedule = dg.build_schedule_from_partitioned_job(
        job, hour_of_day=hour, minute_of_hour=minute, name="daily_at_schedule_time"
    )

    @dg.sensor(job=job, minimum_interval_seconds=60, name="complete_log_days")
    def complete_log_days(
        context: dg.SensorEvaluationContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        """Start the day's run as soon as every device's log for it is in the raw area."""
        first = settings.orchestration_start.isoformat()
        days = [d for d in complete_days(modelcycle, context.cursor) if d >= first]
        if not days:
            yield dg.SkipReason("no new complete day of logs")
            return
        for day in days:
            yield dg.RunRequest(run_key=day, partition_key=day)
        context.update_cursor(days[-1])

    @dg.run_failure_sensor(name="record_failed_runs", minimum_interval_seconds=30)
    def record_failed_runs(
        context: dg.RunFailureSensorContext, modelcycle: ModelcycleResource
    ) -> None:
        """A failed run is a failed training: recorded for `training_failed`; alerts checked."""
        from datetime import UTC, datetime

        from modelcycle.alerting.facts import check_alerts
        from modelcycle.store.training_runs import record_failure

        run = context.dagster_run
        if run.tags.get("dagster/will_retry") == "true":
            return  # a run-level retry follows: only the final failure is an alert
        partition = run.tags.get("dagster/partition")
        day = date.fromisoformat(partition) if partition else datetime.now(UTC).date()
        with modelcycle.monitoring() as monitoring:
            reason = context.failure_event.message or "run failed"
            record_failure(monitoring.store, day, reason, trigger="dagster")
            check_alerts(
                monitoring.settings,
                monitoring.store,
                lake=monitoring.lake,
                raw=monitoring.raw,
                now=datetime.now(UTC),
            )

    return [schedule], [complete_log_days, record_failed_runs]
