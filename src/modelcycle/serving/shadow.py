"""Shadow scoring: the challenger scores the requests the champion answered, off the response path.

A predict route hands its body and the champion's scores to `submit` once its answer is computed:
a dictionary look-up and a `put_nowait`, so a response never waits for the challenger. One worker
thread scores the queued requests with the version behind the shadow alias (loaded, verified,
cached and hot-swapped by a `ModelManager` of its own) and writes the challenger's scores beside
the champion's to `lake/shadow/` through a `PredictionLog`. It works in batches: what is queued
(up to MAX_BATCH_REQUESTS / MAX_BATCH_ROWS) is stacked into one matrix per challenger and scored
in one ONNX Runtime call, so the process pays one call and one log append per batch rather than
per request, and after a small batch the worker waits `max_delay` for work to accumulate (and
leaves the GIL to the answers). A request not sampled is skipped, counted. A full queue drops
the request, counted; a failed scoring is logged, counted and shown in `/v1/models`, and the
worker goes on. Stopping scores what is queued, then flushes the log. With no challenger, or a
challenger that is the champion's own version, nothing is queued: shadow scoring is idle.
"""

from __future__ import annotations

import os
import queue
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
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

log = structlog.get_logger(__name__)

TASK_NAME = "shadow_scoring"
STOP_TIMEOUT_SECONDS = 30.0
LOWEST_PRIORITY = 19  # nice
# One batch: what is queued, up to this many requests or rows, scored in one ONNX Runtime call.
MAX_BATCH_REQUESTS = 256
MAX_BATCH_ROWS = 8192


class ShadowMismatchError(ModelcycleError):
    """The challenger scored a different number of rows than the champion did."""


@dataclass(frozen=True)
class ChampionAnswer:
    """What the champion answered for one model of a request."""

    model: str
    version: str
    scores: list[float]


@dataclass(frozen=True)
class ShadowJob:
    """One answered request: its body, and the champion's answer for each model it scored."""

    raw: bytes
    answers: tuple[ChampionAnswer, ...]
    request_id: str | None
    predicted_at: datetime
    device_id: str | None = None  # a device request: the body is raw readings, not features
    windows: list[datetime] | None = None
    # The champion's parsed feature matrix and its column order: a challenger with the same
    # features scores it as is, without parsing the body again (native code, no GIL held).
    matrix: NDArray[np.float32] | None = None
    features: tuple[str, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


def _yield_cpu_to_requests() -> None:
    """Run the calling thread at the lowest CPU priority (Linux: a thread has its own nice
    value): on busy cores the answers' threads go first, the shadow's ONNX Runtime work after."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
        except OSError as error:
            log.warning("shadow worker runs at normal CPU priority", error=str(error))


class ShadowScorer:
    """A bounded queue in the request, the challenger's scores in the lake from one thread."""

    def __init__(
        self,
        manager: ModelManager,
        shadow_log: PredictionLog,
        *,
        max_queued: int,
        max_rows: int,
        max_delay: float = 0.1,
        sample: float = 1.0,
        health: TaskHealth | None = None,
        clock: Callable[[], datetime] = _now,
    ):
        self.manager = manager
        self.log = shadow_log
        self.max_rows = max_rows
        self.max_delay = max_delay  # seconds the worker lets requests accumulate into a batch
        self.sample = sample  # the fraction of requests shadowed; the others are skipped
        self._stopping = threading.Event()
        self.health = health or TaskHealth(TASK_NAME)
        self.clock = clock
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards `dropped`: requests submit from many threads
        self.requests_scored = 0
        self.rows_scored = 0
        self.batches = 0
        self.dropped = 0
        self.skipped = 0  # not sampled (MODELCYCLE_SERVING_SHADOW_SAMPLE)

    @property
    def max_queued(self) -> int:
        return self._queue.maxsize

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def challenger(self, name: str, champion_version: str) -> LoadedModel | None:
        """The version to shadow `name` with, or None when there is none or it is the champion."""
        model = self.manager.models.get(name)
        if model is None or model.record.version == champion_version:
            return None
        return model

    def submit(self, job: ShadowJob) -> None:
        """Cheap enough for the request path; never waits, never raises for a full queue."""
        if not any(self.challenger(a.model, a.version) for a in job.answers):
            return
        if self.sample < 1.0 and random.random() >= self.sample:
            with self._lock:
                self.skipped += 1
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                dropped = self.dropped
            if dropped & (dropped - 1) == 0:  # the 1st, 2nd, 4th, 8th... drop: logged, not flooded
                log.warning(
                    "shadow scoring dropped a request: its queue is full",
                    dropped=dropped,
                    max_queued=self.max_queued,
                )

    def start(self) -> None:
        if self._thread is not None:
            return
        self.log.start()
        self.health.started()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Score what is queued, stop the worker, then flush the shadow log."""
        if self._thread is not None:
            self._stopping.set()  # no more waiting for work to accumulate
            self._queue.put(None)
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
            if self._thread.is_alive():
                log.error("shadow scoring did not finish its queue at shutdown", queued=self.queued)
            self._thread = None
        self.health.ended(None)
        self.log.stop()

    def _run(self) -> None:
        reason: str | None = "the worker thread ended"
        _yield_cpu_to_requests()
        try:
            while True:
                jobs, more = self._next_batch()
                self._score_batch(jobs)
                if not more:
                    break
                if len(jobs) < MAX_BATCH_REQUESTS:
                    # A small batch: let requests accumulate (and the answers have the GIL)
                    # rather than pay an ONNX Runtime call and a log append for each.
                    self._stopping.wait(self.max_delay)
            reason = None
        finally:
            if reason is not None:  # only a BaseException gets here: _score_batch never raises
                self.health.ended(reason)
                log.critical("shadow scoring stopped; restart the API")

    def _next_batch(self) -> tuple[list[ShadowJob], bool]:
        """What is queued (waiting for the first), up to a batch; False once told to stop."""
        job = self._queue.get()
        if job is None:
            return [], False
        jobs, rows = [job], _rows(job)
        while len(jobs) < MAX_BATCH_REQUESTS and rows < MAX_BATCH_ROWS:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, False
            jobs.append(job)
            rows += _rows(job)
        return jobs, True

    def _score_batch(self, jobs: list[ShadowJob]) -> None:
        """Score queued requests with the challengers and log them in one go; never raises.

        Row requests a challenger scores are stacked into one matrix, one ONNX Runtime call per
        challenger, and the scores split back per request; device requests are scored one by
        one. A request that fails is logged and counted on its own, the others go on."""
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
                    scored[index] = [
                        self._batch(job, job.answers[0], challenger, scores[start:end])
                    ]
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
        challenger = self.challenger(answer.model, answer.version)
        if challenger is None:
            return None  # scored as nothing by _challenger_batches
        if job.matrix is not None and challenger.features == job.features:
            return challenger, job.matrix
        return challenger, parse_rows(job.raw, challenger, max_rows=self.max_rows)

    def _challenger_batches(self, job: ShadowJob) -> list[PredictionBatch]:
        pairs = [
            (challenger, answer)
            for answer in job.answers
            if (challenger := self.challenger(answer.model, answer.version)) is not None
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
            self._batch(job, answer, challenger, scores)
            for (challenger, answer), scores in zip(pairs, scored, strict=True)
        ]

    @staticmethod
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


def _rows(job: ShadowJob) -> int:
    return max((len(answer.scores) for answer in job.answers), default=0)
