"""The shadow worker's scoring: a batch of answered requests, scored by the challenger, logged.

Row requests a challenger scores are stacked into one matrix, one ONNX Runtime call per
challenger, and the scores split back per request; device requests are scored one by one. A
request that fails (a row count that disagrees with the champion's, a body the challenger cannot
read) is logged and counted on its own; the others go on. This runs in the worker process
(serving/shadow_worker.py), so none of it competes with the API's answers for a GIL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import structlog
from numpy.typing import NDArray

from modelcycle.errors import ModelcycleError
from modelcycle.registry.loading import LoadedModel
from modelcycle.serving.background import TaskHealth
from modelcycle.serving.manager import ModelManager, describe_error
from modelcycle.serving.prediction_log import PredictionBatch, PredictionLog
from modelcycle.serving.scoring import parse_rows, score_device, score_rows
from modelcycle.serving.shadow_jobs import ChampionAnswer, ShadowJob, features_digest

log = structlog.get_logger(__name__)

TASK_NAME = "shadow_scoring"


class ShadowMismatchError(ModelcycleError):
    """The challenger scored a different number of rows than the champion did."""


def _now() -> datetime:
    return datetime.now(UTC)


def challenger_of(manager: ModelManager, name: str, champion_version: str) -> LoadedModel | None:
    """The version to shadow `name` with, or None when there is none or it is the champion."""
    model = manager.models.get(name)
    if model is None or model.record.version == champion_version:
        return None
    return model


class BatchScorer:
    """Scores batches with the challengers `manager` holds, into `shadow_log`; counts them."""

    def __init__(
        self,
        manager: ModelManager,
        shadow_log: PredictionLog,
        *,
        max_rows: int,
        health: TaskHealth | None = None,
        clock: Callable[[], datetime] = _now,
    ):
        self.manager = manager
        self.log = shadow_log
        self.max_rows = max_rows
        self.health = health or TaskHealth(TASK_NAME)
        self.clock = clock
        self.requests_scored = 0
        self.rows_scored = 0
        self.batches = 0

    def score(self, jobs: list[ShadowJob]) -> None:
        """Score one batch and log it in one append; never raises an `Exception`."""
        scored: dict[int, list[PredictionBatch]] = {}
        stacks: dict[int, tuple[LoadedModel, list[tuple[int, ShadowJob, NDArray[np.float32]]]]] = {}
        for index, job in enumerate(jobs):
            try:
                rows = self._row_matrix(job)
                if rows is None:
                    scored[index] = self._challenger_batches(job)
                else:
                    challenger, matrix = rows
                    stacks.setdefault(id(challenger), (challenger, []))[1].append(
                        (index, job, matrix)
                    )
            except Exception as error:  # noqa: BLE001 - see _failed
                self._failed(error)
        for challenger, members in stacks.values():
            try:
                matrices = [matrix for _, _, matrix in members]
                stacked = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
                scores = challenger.predict(stacked).tolist()
            except Exception as error:  # noqa: BLE001 - see _failed
                self._failed(error, requests=len(members))
                continue
            start = 0
            for index, job, matrix in members:
                end = start + len(matrix)
                try:
                    scored[index] = [_batch(job, job.answers[0], challenger, scores[start:end])]
                except Exception as error:  # noqa: BLE001 - see _failed
                    self._failed(error)
                start = end
        batches = [batch for index in sorted(scored) for batch in scored[index]]
        self.log.record_many(batches)
        self.rows_scored += sum(len(batch.scores) for batch in batches)
        self.requests_scored += sum(1 for found in scored.values() if found)
        self.batches += 1 if jobs else 0
        if batches:
            self.health.succeeded(self.clock())

    def _failed(self, error: Exception, requests: int = 1) -> None:
        """A bad challenger or a bug must not end the worker: logged once (with its traceback
        when the problem is new), counted per request, in status."""
        problem = describe_error(error)
        trace = {} if problem == self.health.last_error else {"exc_info": error}
        log.warning("shadow scoring failed", error=problem, requests=requests, **trace)
        for _ in range(requests):
            self.health.failed(problem, self.clock())

    def _row_matrix(self, job: ShadowJob) -> tuple[LoadedModel, NDArray[np.float32]] | None:
        """The challenger of a row request and the matrix it scores; None for anything else."""
        if job.device_id is not None or len(job.answers) != 1:
            return None
        answer = job.answers[0]
        challenger = challenger_of(self.manager, answer.model, answer.version)
        if challenger is None:
            return None  # scored as nothing by _challenger_batches
        if job.matrix is not None:
            same = (
                challenger.features == job.features
                if job.features
                else features_digest(challenger.features) == job.features_digest
            )
            if same:
                return challenger, job.matrix
            if not job.raw:
                raise ModelcycleError(
                    f"{answer.model} v{challenger.record.version} reads other features than "
                    "the request was sent with (the challenger changed on the way)"
                )
        return challenger, parse_rows(job.raw, challenger, max_rows=self.max_rows)

    def _challenger_batches(self, job: ShadowJob) -> list[PredictionBatch]:
        pairs = [
            (challenger, answer)
            for answer in job.answers
            if (challenger := challenger_of(self.manager, answer.model, answer.version)) is not None
        ]
        if not pairs:
            return []  # the challenger became the champion (or went) while the job waited
        if job.device_id is None:
            ((challenger, _),) = pairs
            scored = [score_rows(job.raw, challenger, max_rows=self.max_rows)]
        else:
            device = score_device(
                job.raw, job.device_id, [c for c, _ in pairs], max_rows=self.max_rows
            )
            scored = [scores for _, scores in device.scores]
        return [
            _batch(job, answer, challenger, scores)
            for (challenger, answer), scores in zip(pairs, scored, strict=True)
        ]


def _batch(
    job: ShadowJob, answer: ChampionAnswer, challenger: LoadedModel, scores: list[float]
) -> PredictionBatch:
    if len(scores) != len(answer.scores):
        raise ShadowMismatchError(
            f"{answer.model} v{challenger.record.version} scored {len(scores)} rows, "
            f"the champion v{answer.version} {len(answer.scores)}"
        )
    return PredictionBatch(
        predicted_at=job.predicted_at,
        request_id=job.request_id,
        model=answer.model,
        version=challenger.record.version,
        scores=scores,
        device_id=job.device_id,
        windows=job.windows,
        champion_version=answer.version,
        champion_scores=answer.scores,
    )
