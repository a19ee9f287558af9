"""The daily lifecycle as Dagster assets: each one calls the core function its CLI command calls.

readings (ingest) → features → models (train + register, gated) → releases → scores (+ drift)
                                                                               → evaluation, alerts
Steps that touch storage or the registry retry with exponential backoff and jitter. The blocking
data-quality check stops what comes after it; the metric gate does not: a refused challenger's
release request records it, and the serving champion is scored and watched that day anyway.
"""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg

from modelcycle.errors import DataNotFoundError
from modelcycle.features.store import build_day_features, local_copy, readings_spec
from modelcycle.lake import layout
from modelcycle.lake.fleet import device_ids
from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.lake.report import IngestReport
from modelcycle.orchestration.keys import (
    CLASSIFIER_KEY,
    DETECTOR_KEY,
    GATE_CHECK,
    MODEL_STALE_AFTER,
    NETWORK_RETRY,
    QUALITY_CHECK,
    RELEASE_KEYS,
    retried_only_if_transient,
)
from modelcycle.orchestration.partitions import daily_partitions, partition_day
from modelcycle.orchestration.quality import judge_partition, null_shares
from modelcycle.orchestration.release import build_release_asset
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.orchestration.training import train_day
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore


def build_assets(settings: Settings) -> list[Any]:
    """The lifecycle's assets, with partitions and policies from settings."""
    partitions = daily_partitions(settings)
    window = settings.training_window_days

    @dg.asset(
        partitions_def=partitions,
        retry_policy=NETWORK_RETRY,
        group_name="lake",
        kinds={"parquet", "duckdb"},
        check_specs=[dg.AssetCheckSpec(QUALITY_CHECK, asset="readings", blocking=True)],
    )
    def readings(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
        """A day of device logs, validated into the lake (`modelcycle ingest`)."""
        day = partition_day(context)
        lake, raw = modelcycle.lake(), modelcycle.raw()
        cfg = modelcycle.settings()
        with retried_only_if_transient():
            yield from _ingest_and_judge(day, lake, raw, cfg)

    @dg.asset(
        partitions_def=partitions,
        deps=[readings],
        retry_policy=NETWORK_RETRY,
        group_name="lake",
        kinds={"parquet", "duckdb"},
    )
    def features(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> dg.MaterializeResult[Any]:
        """Hourly device-window features of the day (the module training and serving share)."""
        day = partition_day(context)
        lake = modelcycle.lake()
        with retried_only_if_transient():
            table = build_day_features(lake, day, readings_spec(lake, day))
        return dg.MaterializeResult(metadata={"windows": table.num_rows})

    @dg.multi_asset(
        partitions_def=partitions,
        specs=[
            dg.AssetSpec(
                key,
                deps=[
                    dg.AssetDep(
                        "features",
                        partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(window - 1)),
                    )
                ],
                group_name="training",
                kinds={"mlflow", "onnx"},
                freshness_policy=dg.FreshnessPolicy.time_window(fail_window=MODEL_STALE_AFTER),
            )
            for key in (CLASSIFIER_KEY, DETECTOR_KEY)
        ],
        check_specs=[
            dg.AssetCheckSpec(GATE_CHECK, asset=key, blocking=False)
            for key in (CLASSIFIER_KEY, DETECTOR_KEY)
        ],
        retry_policy=NETWORK_RETRY,
        can_subset=False,
    )
    def models(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
        """Train both models on the window ending with the day, register, gate against champions."""
        yield from train_day(context, modelcycle, partition_day(context))

    return [
        readings,
        features,
        models,
        build_release_asset(partitions),
        *_monitoring_assets(partitions),
    ]


def _monitoring_assets(partitions: dg.DailyPartitionsDefinition) -> list[Any]:
    """Scoring, evaluation and the alert check of each day."""

    @dg.asset(
        partitions_def=partitions,
        # after the releases: a challenger approved today is the champion that scores the day
        deps=["features", CLASSIFIER_KEY, DETECTOR_KEY, *RELEASE_KEYS.values()],
        retry_policy=NETWORK_RETRY,
        group_name="monitoring",
    )
    def scores(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> dg.MaterializeResult[Any]:
        """Each champion scores the day; drift against its training data (`modelcycle score`)."""
        from modelcycle.monitoring.daily import score_day

        day = partition_day(context)
        with modelcycle.monitoring() as monitoring, retried_only_if_transient():
            scored = score_day(monitoring, day)
        metadata: dict[str, Any] = {}
        for item in scored:
            metadata[f"{item.model} version"] = item.version
            metadata[f"{item.model} flagged"] = item.n_flagged
            if item.drift is not None:
                metadata[f"{item.model} drifted features"] = item.drift.n_drifted
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        partitions_def=partitions,
        deps=[scores],
        retry_policy=NETWORK_RETRY,
        group_name="monitoring",
        output_required=False,
    )
    def evaluation(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.MaterializeResult[Any]]:
        """The day's metrics once its labels are in; until then nothing is materialized."""
        from modelcycle.monitoring.daily import evaluate_day
        from modelcycle.monitoring.evaluation import LabelsNotReadyError

        day = partition_day(context)
        with modelcycle.monitoring() as monitoring:
            try:
                evaluated = evaluate_day(monitoring, day)
            except LabelsNotReadyError as error:
                context.log.info(f"not evaluated yet: {error}")
                return
        yield dg.MaterializeResult(
            metadata={f"{e.model} {e.role} accuracy": e.metrics["accuracy"] for e in evaluated}
        )

    @dg.asset(
        partitions_def=partitions,
        deps=[scores],
        retry_policy=NETWORK_RETRY,
        group_name="monitoring",
    )
    def alerts(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> dg.MaterializeResult[Any]:
        """The alert rules checked on the day's scores (`modelcycle alerts check`)."""
        from modelcycle.alerting.facts import check_monitored

        with modelcycle.monitoring() as monitoring:
            result = check_monitored(monitoring, scores_day=partition_day(context))
        failed = [d.channel for d in result.deliveries if not d.ok]
        return dg.MaterializeResult(
            metadata={
                "firing": len(result.firing),
                "new events": len(result.events),
                "failed channels": ", ".join(failed) or "none",
                "rule errors": ", ".join(result.rule_errors) or "none",
            }
        )

    return [scores, evaluation, alerts]


def _ingest_and_judge(
    day: date, lake: ObjectStore, raw: ObjectStore, cfg: Settings
) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
    """Ingest the day, then judge the partition; a missing day fails the check with the reason."""
    try:
        report = ingest_day(day, raw=raw, lake=lake, options=IngestOptions.from_settings(cfg))
    except DataNotFoundError as missing:
        # a missing day is the quality check's verdict, shown in the UI and in the alert
        yield dg.MaterializeResult(metadata={"missing": str(missing)})
        yield dg.AssetCheckResult(
            check_name=QUALITY_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=str(missing),
        )
        return
    with local_copy(lake, layout.readings_partition(day)) as path:
        nulls = null_shares(path)
    verdict = judge_partition(
        report,
        nulls,
        fleet_size=len(device_ids(raw)),
        min_row_share=cfg.quality_min_row_share,
        max_quarantine_share=cfg.quality_max_quarantine_share,
        max_null_share=cfg.quality_max_null_share,
    )
    yield dg.MaterializeResult(metadata=_ingest_metadata(report))
    yield dg.AssetCheckResult(
        check_name=QUALITY_CHECK,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata=verdict.metadata,
    )


def _ingest_metadata(report: IngestReport) -> dict[str, Any]:
    return {
        "rows_read": report.rows_read,
        "rows_written": report.rows_written,
        "rows_quarantined": report.rows_quarantined,
        "files_quarantined": report.files_quarantined,
        "quarantine_share": round(report.quarantine_share, 4),
        "devices": report.devices,
    }
