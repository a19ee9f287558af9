"""One partition per day of device logs, from the configured first day."""

from __future__ import annotations

from datetime import date

import dagster as dg

from modelcycle.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.orchestration_start.isoformat(),
        timezone=settings.schedule_timezone,
    )


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
