"""What `/readyz` and `/v1/models` say about the API's health: a pure reading of its state.

`/readyz` is what a load balancer asks: can this process answer predictions? It answers 503 only
when it cannot, or cannot recover without a restart (a model has no verified version; a background
task has stopped). Anything that fails while the served models still answer (the registry or the
monitoring store unreachable for a while, the serving cache or the lake refusing writes) makes it
`degraded`, still 200: taking every replica out of service because the registry is down would turn
a registry outage into an API outage. `/readyz` is open, so it names problems without details;
`/v1/models` (behind the API key) carries the errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelcycle.serving.background import BackgroundTasks, TaskHealth
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.prediction_log import PredictionLog
from modelcycle.serving.schemas import (
    Health,
    PredictionLogPublic,
    ShadowModelPublic,
    ShadowPublic,
    TaskPublic,
)
from modelcycle.serving.services import Services
from modelcycle.serving.shadow import ShadowScorer

CACHE = "serving_cache"


@dataclass(frozen=True)
class Readiness:
    missing: list[str]
    stopped: list[str]
    failing: list[str]

    @property
    def ready(self) -> bool:
        return not self.missing and not self.stopped

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> Health:
        problems = [f"{name} stopped" for name in self.stopped]
        problems += [f"{name} failing" for name in self.failing]
        status = ("degraded" if problems else "ready") if self.ready else "not ready"
        return Health(status=status, missing=self.missing, problems=problems)


def readiness(svc: Services) -> Readiness:
    manager = svc.manager
    tasks = list(svc.background)
    failing = [task.name for task in tasks if task.running and task.failing]
    if any(manager.status[name].cache_error for name in manager.names):
        failing.append(CACHE)
    return Readiness(
        missing=[name for name in manager.names if name not in manager.models],
        stopped=[task.name for task in tasks if task.stopped is not None],
        failing=failing,
    )


def task_public(task: TaskHealth) -> TaskPublic:
    return TaskPublic(
        name=task.name,
        running=task.running,
        stopped=task.stopped,
        failing=task.failing,
        errors=task.errors,
        consecutive_failures=task.consecutive_failures,
        last_success=task.last_success,
        last_error=task.last_error,
        last_error_at=task.last_error_at,
    )


def tasks_public(background: BackgroundTasks) -> list[TaskPublic]:
    return [task_public(task) for task in background]


def prediction_log_public(prediction_log: PredictionLog) -> PredictionLogPublic | None:
    if prediction_log.lake is None:
        return None
    return PredictionLogPublic(
        rows_written=prediction_log.rows_written,
        rows_dropped=prediction_log.rows_dropped,
        buffered_rows=prediction_log.buffered_rows,
        max_buffered_rows=prediction_log.max_buffered_rows,
    )


def shadow_public(shadow: ShadowScorer | None, champions: ModelManager) -> ShadowPublic | None:
    """What the challenger does in the shadow, per model: idle or scoring, and why not."""
    if shadow is None:
        return None
    models = []
    for name in shadow.names:
        held = shadow.challengers.get(name)
        champion = champions.models.get(name)
        champion_version = champion.record.version if champion else None
        models.append(
            ShadowModelPublic(
                name=name,
                version=held.version if held else None,
                champion_version=champion_version,
                scoring=champion_version is not None
                and shadow.challenger(name, champion_version) is not None,
                last_checked=held.last_checked if held else None,
                last_error=held.last_error if held else None,
            )
        )
    return ShadowPublic(
        alias=shadow.alias,
        state="scoring" if any(model.scoring for model in models) else "idle",
        models=models,
        requests_scored=shadow.requests_scored,
        rows_scored=shadow.rows_scored,
        batches=shadow.batches,
        rows_written=shadow.rows_written,
        dropped=shadow.dropped,
        skipped=shadow.skipped,
        shed=shadow.shed,
        lost=shadow.lost,
        queued=shadow.queued,
        max_queued=shadow.max_queued,
        errors=shadow.health.errors,
        last_error=shadow.health.last_error,
        last_error_at=shadow.health.last_error_at,
        worker_pid=shadow.worker_pid,
        worker_restarts=shadow.restarts,
        worker_rss_bytes=shadow.worker_rss_bytes,
    )
