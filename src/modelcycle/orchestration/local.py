"""The daily job run in this process, day after day, with an outcome a person can read.

The demo uses it: the same job, assets and checks the daemon runs, recorded in the same Dagster
instance, so `modelcycle up` shows these runs afterwards.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from modelcycle.orchestration.keys import GATE_CHECK
from modelcycle.orchestration.sensors import DAILY_JOB, step_failure_reason

# Steps' own log lines stay in the run's record (the UI shows them), a failed step's traceback
# included; the outcome says in one line what failed or which check stopped the day, and why.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
LAKE_ONLY = (dg.AssetKey("readings"), dg.AssetKey("features"))


@dataclass(frozen=True)
class DayOutcome:
    day: date
    succeeded: bool
    run_id: str
    versions: dict[str, str] = field(default_factory=dict)  # registered model → its new version
    failed_checks: list[str] = field(default_factory=list)  # "model check: why" (stopped the day)
    refused: dict[str, str] = field(default_factory=dict)  # model → why its gate refused it
    releases: dict[str, str] = field(default_factory=dict)  # model → its request's state
    champions: dict[str, str] = field(default_factory=dict)  # model → champion after the day
    failed_steps: list[str] = field(default_factory=list)  # "step: first line of the error"
    accuracy: dict[str, float] = field(default_factory=dict)  # "model role" → accuracy

    @property
    def problem(self) -> str | None:
        problems = self.failed_checks + self.failed_steps
        return "; ".join(problems) if problems else None


def run_day(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    day: date,
    assets: Sequence[dg.AssetKey] | None = None,
) -> DayOutcome:
    """Run the daily job (or only `assets`) for `day`; a failed run is an outcome, not an error."""
    job = defs.resolve_job_def(DAILY_JOB)
    result = job.execute_in_process(
        partition_key=day.isoformat(),
        instance=instance,
        raise_on_error=False,
        asset_selection=list(assets) if assets is not None else None,
        run_config=QUIET_RUN_CONFIG,
    )
    trained = [
        m for m in result.asset_materializations_for_node("models") if "version" in m.metadata
    ]
    # a model is named as in the registry, in every line a person reads, not by its asset key
    names = {
        m.asset_key.to_user_string(): str(m.metadata["registered_model"].value) for m in trained
    }
    versions = {
        names[m.asset_key.to_user_string()]: str(m.metadata["version"].value) for m in trained
    }
    accuracy = {
        name.removesuffix(" accuracy"): float(value.value)  # type: ignore[arg-type]
        for m in result.asset_materializations_for_node("evaluation")
        for name, value in m.metadata.items()
    }
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    failed_checks = [
        f"{names.get(e.asset_key.to_user_string(), e.asset_key.to_user_string())} "
        f"{e.check_name}: {e.description or 'failed'}"
        for e in failed
        if e.check_name != GATE_CHECK  # a refused challenger does not stop the day
    ]
    refused = {
        names.get(e.asset_key.to_user_string(), e.asset_key.to_user_string()): e.description
        or "failed"
        for e in failed
        if e.check_name == GATE_CHECK
    }
    released = [
        {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("release_requests")
    ]
    failed_steps = [
        f"{event.step_key}: {step_failure_reason(event)}"
        for event in result.get_step_failure_events()
        if not _stopped_by_check(event)  # the failed check above says why
    ]
    return DayOutcome(
        day=day,
        succeeded=result.success,
        run_id=result.run_id,
        versions=versions,
        failed_checks=failed_checks,
        refused=refused,
        releases={str(r["registered_model"]): str(r["state"]) for r in released},
        champions={str(r["registered_model"]): str(r["champion"]) for r in released},
        failed_steps=failed_steps,
        accuracy=accuracy,
    )


def _stopped_by_check(event: dg.DagsterEvent) -> bool:
    error = event.step_failure_data.error
    return error is not None and error.cls_name == "DagsterAssetCheckFailedError"
