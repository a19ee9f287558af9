"""The release step of the daily job: each registered challenger's release request, gates attached.

It runs after training and before scoring, so that a challenger the policy approves (in `local`
and `dev`, when every gate passed) is the champion that scores the day. Opening is idempotent per
(model, version): a retried step finds the request already open and decides nothing twice. A
failed gate is recorded on the request and stops only that challenger's promotion.
"""

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg

from modelcycle.orchestration.keys import (
    NETWORK_RETRY,
    QUALITY_CHECK,
    RELEASE_KEYS,
    retried_only_if_transient,
)
from modelcycle.orchestration.partitions import partition_day
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.release.rules import GateResult, ReleaseRecord
from modelcycle.settings import Settings

READINGS_KEY = dg.AssetKey("readings")


def build_release_asset(partitions: dg.DailyPartitionsDefinition) -> Any:
    @dg.multi_asset(
        partitions_def=partitions,
        specs=[
            dg.AssetSpec(release, deps=[model], group_name="release", kinds={"mlflow"})
            for model, release in RELEASE_KEYS.items()
        ],
        retry_policy=NETWORK_RETRY,
        can_subset=False,
    )
    def release_requests(
        context: dg.AssetExecutionContext, modelcycle: ModelcycleResource
    ) -> Iterator[dg.MaterializeResult[Any]]:
        """Open the day's challengers' release requests; the policy may approve them at once."""
        day = partition_day(context)
        for model_key, release_key in RELEASE_KEYS.items():
            trained = _trained_metadata(context.instance, model_key, day)
            with retried_only_if_transient():
                metadata = open_request(context.instance, modelcycle, day, trained)
            yield dg.MaterializeResult(asset_key=release_key, metadata=metadata)

    return release_requests


def _trained_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, day: date) -> dict[str, Any]:
    """What the training step recorded for the model on `day` (version, gate verdict, hashes)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        raise dg.Failure(f"{key.to_user_string()} has no training on {day}", allow_retries=False)
    return {name: value.value for name, value in materialization.metadata.items()}


def quality_verdicts(instance: dg.DagsterInstance, days: list[date]) -> dict[date, bool]:
    """The latest data-quality verdict of each day of the window that has one."""
    check = dg.AssetCheckKey(READINGS_KEY, QUALITY_CHECK)
    wanted = {d.isoformat(): d for d in days}
    verdicts: dict[date, bool] = {}
    history = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=len(days) * 10
    )
    for record in history:  # newest first
        entry = record.event.dagster_event if record.event is not None else None
        evaluation = entry.event_specific_data if entry is not None else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue
        partition = record.partition or _run_partition(instance, record.run_id)
        if partition in wanted:
            verdicts.setdefault(wanted[partition], evaluation.passed)
    return verdicts


def _run_partition(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The partition a run was for (a check on a partitioned asset may not record its own)."""
    run = instance.get_run_by_id(run_id)
    return None if run is None else run.tags.get("dagster/partition")


def open_request(
    instance: dg.DagsterInstance,
    modelcycle: ModelcycleResource,
    day: date,
    trained: dict[str, Any],
) -> dict[str, Any]:
    """Gates from the training's record, the request opened (or found), what it led to."""
    from modelcycle.access.identity import SYSTEM
    from modelcycle.registry.contract import SHA256_TAG
    from modelcycle.release.daily_gates import daily_gates
    from modelcycle.release.service import open_releases
    from modelcycle.store.evaluations import version_history

    settings = modelcycle.settings()
    model, version = str(trained["registered_model"]), str(trained["version"])
    window = [day - timedelta(days=n) for n in range(int(trained["training_days"]))]
    with open_releases(settings) as releases:
        tags = releases.registry.version_tags(model, version)
        current = releases.registry.aliases(model).get("champion")
        compared = [v for v in (current, version) if v]
        gates = daily_gates(
            metric_verdict=_as_mapping(trained["gate"]),
            window=sorted(window),
            quality=quality_verdicts(instance, window),
            parity_difference=_float_or_none(trained.get("onnx_max_abs_difference")),
            trained_sha256=str(trained.get("onnx_sha256") or "") or None,
            recorded_sha256=tags.get(SHA256_TAG),
            evaluations=version_history(releases.store, model, compared),
            champion=current,
            challenger=version,
            margin=settings.gate_margin,
            metrics=settings.gated_metrics,
            customers=_customers(trained.get("customers_gate")),
        )
        already_open = any(r.version == version for r in releases.requests(model))
        # the first version became champion when it was registered: no one needs to approve it
        already_champion = current == version
        record = releases.open(
            model=model,
            version=version,
            requested_by=SYSTEM,
            gates=gates,
            lineage={"day": day.isoformat(), "run_id": str(trained.get("run_id") or "")},
        )
        decisions = releases.get(record.id)[1]
        champion = releases.registry.aliases(model).get("champion")
    auto = any(d.action == "approve" and d.actor_kind == "system" for d in decisions)
    notified = "no (not waiting)" if record.state != "pending" else "no (already notified)"
    if already_champion:
        notified = "no (already champion)"
    elif record.state == "pending" and not already_open:  # a retry notifies no one twice
        notified = _notify(settings, record)
    metadata: dict[str, Any] = {
        "registered_model": model,
        "version": version,
        "request_id": record.id,
        "state": record.state,
        "gates_passed": record.gates_passed,
        "approved_by_system": auto,
        "champion": champion or "-",
        "champion_moved_to_this_version": champion == version,
        "approvers_notified": notified,
        "gates": dg.MetadataValue.json([gate.to_dict() for gate in record.gates]),
    }
    for gate in record.gates:
        metadata[f"gate {gate.name}"] = f"{'passed' if gate.passed else 'FAILED'}: {gate.detail}"
    return metadata


def _notify(settings: Settings, record: ReleaseRecord) -> str:
    """Each channel's outcome in a line; a failed channel is logged, never fatal here."""
    from modelcycle.alerting.rules_file import load_rules
    from modelcycle.release.notify import notify_approvers

    outcomes = notify_approvers(record, load_rules(settings.alert_rules), settings.public_url)
    if not outcomes:
        return "no channel configured"
    return ", ".join(f"{o.channel} {'ok' if o.ok else f'FAILED: {o.error}'}" for o in outcomes)


def _customers(recorded: Any) -> GateResult | None:
    """The customers gate training recorded, if it recorded one."""
    return None if recorded is None else GateResult.from_dict(_as_mapping(recorded))


def _as_mapping(value: Any) -> dict[str, Any]:
    return dict(json.loads(value)) if isinstance(value, str) else dict(value)


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
