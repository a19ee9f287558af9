"""The Dagster code location (`workspace.yaml` loads it): assets, job, schedule, sensors."""

from __future__ import annotations

import dagster as dg

from modelcycle.orchestration.assets import build_assets
from modelcycle.orchestration.partitions import daily_partitions
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.orchestration.sensors import DAILY_JOB, MAX_RUNTIME_TAG, build_automation
from modelcycle.settings import Settings, load_settings


def build_definitions(
    settings: Settings, executor: dg.ExecutorDefinition = dg.in_process_executor
) -> dg.Definitions:
    """The code location. The daily job runs its steps in the run's own process: the process
    the daemon launches pays Python, MLflow and polars imports once, where the multiprocess
    executor paid them again in each step's process (measured: docs/orchestration.md). Op retry
    policies still retry a failing step, in that process. `executor` exists for the benchmark
    that measures the other choice."""
    assets = build_assets(settings)
    job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=daily_partitions(settings),
        tags={
            # the training SLA: Dagster's run monitoring fails a run that runs longer
            MAX_RUNTIME_TAG: str(settings.training_max_runtime_seconds),
        },
        description="The daily lifecycle: ingest, features, training, scoring, evaluation, alerts.",
        executor_def=executor,
    )
    schedules, sensors = build_automation(settings, job)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=schedules,
        sensors=sensors,
        resources={"modelcycle": ModelcycleResource()},
    )


defs = build_definitions(load_settings())
