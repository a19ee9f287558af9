"""When the daily job runs: a schedule, a sensor for complete log days, and failure alerts."""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from modelcycle.lake import layout
from modelcycle.lake.fleet import device_ids
from modelcycle.orchestration.keys import CLASSIFIER_KEY, DETECTOR_KEY
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.settings import Settings

DAILY_JOB = "daily_lifecycle"
# The failure message of Dagster's run monitoring for a run past its `dagster/max_runtime`.
RUN_TIMED_OUT = "Exceeded maximum runtime"
MAX_RUNTIME_TAG = "dagster/max_runtime"
ALERT_CLOCK_SECONDS = 600
_ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _past_max_runtime(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Run monitoring's words for a run that ran past its `dagster/max_runtime`, or None.

    Monitoring first asks the run to cancel, then reports the failure; the run worker, once
    interrupted, may report its own failure first, and then the failure event carries the
    worker's words, not monitoring's. The run's own times tell it either way."""
    limit = run.tags.get(MAX_RUNTIME_TAG)
    record = instance.get_run_record_by_id(run.run_id) if limit else None
    if limit is None or record is None or record.start_time is None:
        return None
    ended = record.end_time if record.end_time is not None else time.time()
    if ended - record.start_time < float(limit):
        return None
    return f"{RUN_TIMED_OUT} of {int(float(limit))} seconds."


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
    days = sorted({key.split("/")[0] for key in raw.glob(layout.raw_device_logs_glob())})
    complete = []
    for day in days:
        if after is not None and day <= after:
            continue
        if not _is_day(day):
            continue
        present = {
            key.rsplit("/", 1)[1].removesuffix(".csv")
            for key in raw.glob(layout.raw_device_logs_glob(day))
        }
        if fleet <= present:
            complete.append(day)
    return complete


def day_already_run(instance: dg.DagsterInstance, day: str) -> bool:
    """A run of the daily job for `day` succeeded or is under way (a failed one may run again)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=DAILY_JOB, tags={"dagster/partition": day}), limit=20
    )
    return any(run.status not in _ENDED_BADLY for run in runs)


def failure_reason(context: dg.RunFailureSensorContext) -> str:
    """Why a run failed, in words a person acts on: the failed blocking check's own reason (a
    missing or quarantined day), else the failing step's, else Dagster's run message."""
    checks = context.instance.all_logs(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    )
    for record in checks:
        evaluation = record.dagster_event.event_specific_data if record.dagster_event else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
            what = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
            return f"{what} failed: {evaluation.description or 'no reason given'}"
    for event in context.get_step_failure_events():
        return f"{event.step_key}: {step_failure_reason(event)}"
    return context.failure_event.message or "run failed"


def step_failure_reason(event: dg.DagsterEvent) -> str:
    """A failed step's reason in one line: a `dg.Failure`'s own words, else the error's."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        message = data.user_failure_data.description
    elif data.error is not None:
        message = data.error.message
    else:
        message = event.message or "failed"
    return message.strip().splitlines()[0]


def build_automation(settings: Settings, job: Any) -> tuple[list[Any], list[dg.SensorDefinition]]:
    """The schedule and the sensors. Schedule, failure alerts and the alert clock are on by
    default; `complete_log_days` is off until turned on in the UI (for logs that arrive on their
    own). The schedule and that sensor skip a day the other one already started.
    """
    return [_daily_schedule(settings, job)], _sensors(settings, job)


def _daily_schedule(settings: Settings, job: Any) -> dg.ScheduleDefinition:
    hour, minute = (int(part) for part in settings.schedule_time.split(":"))
    first_day = settings.orchestration_start.isoformat()

    @dg.schedule(
        cron_schedule=f"{minute} {hour} * * *",
        job=job,
        execution_timezone=settings.schedule_timezone,
        name="daily_at_schedule_time",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_at_schedule_time(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        """Each day at the schedule time, run the day before (the last complete day of logs)."""
        tick = context.scheduled_execution_time or datetime.now(
            ZoneInfo(settings.schedule_timezone)
        )
        day = (tick.date() - timedelta(days=1)).isoformat()
        if day < first_day:
            return dg.SkipReason(f"{day} is before MODELCYCLE_ORCHESTRATION_START ({first_day})")
        if day_already_run(context.instance, day):
            return dg.SkipReason(f"{day} already ran (started by the sensor or by hand)")
        return dg.RunRequest(run_key=day, partition_key=day)

    return daily_at_schedule_time


def _sensors(settings: Settings, job: Any) -> list[dg.SensorDefinition]:
    first_day = settings.orchestration_start.isoformat()

    @dg.sensor(
        job=job,
        minimum_interval_seconds=60,
        name="complete_log_days",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def complete_log_days(
        context: dg.SensorEvaluationContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        """Start the day's run as soon as every device's log for it is in the raw area."""
        days = [d for d in complete_days(modelcycle, context.cursor) if d >= first_day]
        fresh = [d for d in days if not day_already_run(context.instance, d)]
        if not fresh:
            yield dg.SkipReason("no new complete day of logs")
        for day in fresh:
            yield dg.RunRequest(run_key=day, partition_key=day)
        if days:
            context.update_cursor(days[-1])

    @dg.run_failure_sensor(
        name="record_failed_runs",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def record_failed_runs(
        context: dg.RunFailureSensorContext, modelcycle: ModelcycleResource
    ) -> None:
        """A failed run is a failed training (`training_failed`); a run that Dagster's run
        monitoring stopped at its maximum run time missed the training SLA (`training_sla_missed`).
        """
        from modelcycle.alerting.facts import check_monitored
        from modelcycle.store.training_runs import record_failure

        run = context.dagster_run
        message = context.failure_event.message or ""
        if message.startswith(RUN_TIMED_OUT):  # run monitoring's words, not a step's
            timed_out: str | None = message
        else:
            timed_out = _past_max_runtime(context.instance, run)
        reason = timed_out or failure_reason(context)
        status = "timed_out" if timed_out else "failed"
        if status == "failed" and run.tags.get("dagster/will_retry") == "true":
            return  # a run-level retry follows: only the final failure is an alert
        # a run past its maximum run time has missed the SLA already, retried or not
        partition = run.tags.get("dagster/partition")
        day = date.fromisoformat(partition) if partition else datetime.now(UTC).date()
        with modelcycle.monitoring() as monitoring:
            record_failure(monitoring.store, day, reason, trigger="dagster", status=status)
            check_monitored(monitoring)

    @dg.sensor(
        name="alert_clock",
        minimum_interval_seconds=ALERT_CLOCK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def alert_clock(
        context: dg.SensorEvaluationContext, modelcycle: ModelcycleResource
    ) -> dg.SkipReason:
        """Check the alert rules between runs, so that alerts about time fire on time: a model
        older than 36 hours (`model_stale`; the model assets' freshness policy shows the same in
        the UI) or no training by the deadline, even on a day nothing runs.
        """
        from modelcycle.alerting.facts import check_monitored

        records = context.instance.get_freshness_state_records([CLASSIFIER_KEY, DETECTOR_KEY])
        freshness = ", ".join(
            f"{key.to_user_string()} {record.freshness_state.value}"
            for key, record in sorted(records.items(), key=lambda item: item[0].to_user_string())
        )
        with modelcycle.monitoring() as monitoring:
            result = check_monitored(monitoring)
        firing = ", ".join(result.firing) or "none"
        return dg.SkipReason(
            f"alerts checked; firing: {firing}; model freshness: {freshness or 'not evaluated yet'}"
        )

    return [complete_log_days, record_failed_runs, alert_clock]
