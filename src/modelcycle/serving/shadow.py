"""Shadow scoring: the challenger scores the requests the champion answered, in another process.

A predict route hands its body, parsed matrix and the champion's scores to `submit` once its
answer is computed: a dictionary look-up, the request's part of a frame encoded (a few µs in
orjson) and a deque append, so a response never waits for the challenger. A sender thread,
woken once per batch (not per request: each wake-up is a GIL hand-off the event loop pays for),
waits `max_delay` for requests to accumulate, then drains them in batches (up to
MAX_BATCH_REQUESTS / MAX_BATCH_ROWS) and writes each as one frame, joined bytes, to the shadow
worker process
(serving/shadow_worker.py, nice 19, its own GIL), which loads the challenger, scores and writes
`lake/shadow/`. A supervisor thread starts the worker, reads its status frames into what
`/v1/models`, `/metrics` and readiness show, and restarts it with backoff when it dies (logged,
counted, shown). A request not sampled is skipped, counted; while the API's own CPU use is
above `shed_above` (it is saturated, and every µs per request costs it throughput) only one
request in SATURATED_KEEP_EVERY is encoded and sent, the others are shed, counted; a
full queue (the worker busy: its
pipe full) drops the request, counted; a batch sent to a worker that died is lost, counted.
Stopping sends what is queued, then the worker scores it, flushes its log and exits.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from modelcycle.serving.background import TaskHealth
from modelcycle.serving.manager import describe_error
from modelcycle.serving.shadow_jobs import EncodedJob, ShadowJob, encode_job, jobs_frame
from modelcycle.serving.shadow_process import EXIT_TIMEOUT_SECONDS, WorkerProcess, describe_exit
from modelcycle.serving.shadow_scoring import TASK_NAME
from modelcycle.serving.shadow_worker import LOG_TASK, POLL_TASK
from modelcycle.settings import Settings

log = structlog.get_logger(__name__)

__all__ = ["TASK_NAME", "ChallengerState", "ShadowScorer"]

# One batch: what is queued, up to this many requests or rows, one frame, one ONNX Runtime call.
# The requests come encoded, so a frame costs the sender a join, not a GIL-holding encode.
MAX_BATCH_REQUESTS = 256
MAX_BATCH_ROWS = 8192
RESTART_SECONDS = (1.0, 60.0)  # backoff between worker starts: first, most
SATURATED_KEEP_EVERY = 10  # a saturated API still sends 1 request in 10: the comparison goes on
STABLE_SECONDS = 60.0  # a worker that lived this long restarts at once after dying
COUNTERS = ("requests_scored", "rows_scored", "batches", "rows_written")


@dataclass(frozen=True)
class ChallengerState:
    """What the worker last said it holds for one model."""

    version: str | None
    digest: str
    last_checked: datetime | None
    last_error: str | None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ShadowScorer:
    """A bounded queue in the request; the challenger's scores in the lake from a worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        health: TaskHealth | None = None,
        poll_health: TaskHealth | None = None,
        log_health: TaskHealth | None = None,
    ):
        self.settings = settings
        self.alias = settings.serving_shadow_alias
        self.names = settings.model_names
        self.max_delay = settings.serving_shadow_max_delay_seconds
        self.sample = settings.serving_shadow_sample  # the fraction of requests shadowed
        self.shed_above = settings.serving_shadow_shed_above  # the API's CPU use, in cores
        self._last_cpu = (time.monotonic(), time.process_time())
        self.health = health or TaskHealth(TASK_NAME)
        self._mirrors = {
            TASK_NAME: self.health,
            POLL_TASK: poll_health or TaskHealth(POLL_TASK),
            LOG_TASK: log_health or TaskHealth(LOG_TASK),
        }
        self.max_queued = settings.serving_shadow_queue
        # Appended by the event loop, taken by the sender (deque's append/popleft are atomic).
        self._queue: deque[EncodedJob] = deque()
        self._work = threading.Event()  # requests queued since the sender last looked
        self._digests: dict[str, str] = {}  # the challengers' column orders, as last reported
        self._lock = threading.Lock()  # guards the counters requests and threads add to
        self._worker_ready = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker: WorkerProcess | None = None
        self._sender_done = False
        self.challengers: Mapping[str, ChallengerState] = {}
        self.dropped = 0
        self.skipped = 0  # not sampled (MODELCYCLE_SERVING_SHADOW_SAMPLE)
        self.shed = 0  # not sent while the API was saturated (MODELCYCLE_SERVING_SHADOW_SHED_ABOVE)
        self._saturated = False  # as the sender last measured it
        self._shed_tick = 0
        self.lost = 0  # sent to a worker that died before scoring them
        self.restarts = 0
        self.worker_pid: int | None = None
        self.worker_rss_bytes: int | None = None
        self._deaths_in_a_row = 0
        self._reported: dict[str, int] = dict.fromkeys(COUNTERS, 0)  # by the current worker
        self._before: dict[str, int] = dict.fromkeys(COUNTERS, 0)  # by the workers before it
        self._errors_before: dict[str, int] = dict.fromkeys(self._mirrors, 0)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _total(self, counter: str) -> int:
        return self._before[counter] + self._reported[counter]

    requests_scored = property(lambda self: self._total("requests_scored"))
    rows_scored = property(lambda self: self._total("rows_scored"))
    batches = property(lambda self: self._total("batches"))
    rows_written = property(lambda self: self._total("rows_written"))

    def challenger(self, name: str, champion_version: str) -> str | None:
        """The version that shadows `name`, or None when there is none or it is the champion."""
        state = self.challengers.get(name)
        if state is None or state.version is None or state.version == champion_version:
            return None
        return state.version

    def submit(self, job: ShadowJob) -> None:
        """Cheap enough for the request path; never waits, never raises for a full queue."""
        if not any(self.challenger(a.model, a.version) for a in job.answers):
            return
        if self.sample < 1.0 and random.random() >= self.sample:
            with self._lock:
                self.skipped += 1
            return
        if self._saturated:  # decided before the encoding: a shed request costs a count
            self._shed_tick += 1
            if self._shed_tick % SATURATED_KEEP_EVERY:
                self.shed += 1  # only the event loop counts it
                return
        if len(self._queue) < self.max_queued:
            self._queue.append(encode_job(job, self._digests))
            # Seen set: the sender has not cleared it yet, so its drain comes after this append.
            if not self._work.is_set():  # one wake-up (a lock) per batch, not per request
                self._work.set()
            return
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        if dropped & (dropped - 1) == 0:  # the 1st, 2nd, 4th, 8th... drop: logged, not flooded
            log.warning(
                "shadow scoring dropped a request: its queue is full",
                dropped=dropped,
                max_queued=self.max_queued,
            )

    def refresh(self, name: str) -> str:
        """The webhook's reload of the challenger, done by the worker (which holds it)."""
        worker = self._worker
        if worker is None:
            return "no worker"
        try:
            worker.send({"kind": "refresh", "model": name})
        except OSError:
            return "no worker"
        return "requested"

    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        self._sender_done = False
        self.health.started()
        self._threads = [
            threading.Thread(target=self._supervise, name="shadow-supervisor", daemon=True),
            threading.Thread(target=self._send, name="shadow-sender", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Send what is queued, let the worker score it and flush its log, then end."""
        if not self._threads:
            return
        self._stopping.set()  # no more waiting for work to accumulate, no more restarts
        self._work.set()  # the sender sends what is queued, then closes the worker's input
        with self._worker_ready:
            self._worker_ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=EXIT_TIMEOUT_SECONDS * 2)
            if thread.is_alive():
                log.error("shadow scoring did not finish at shutdown", thread=thread.name)
        self._threads = []
        for health in self._mirrors.values():
            health.ended(None)

    # The sender: queue -> frames.

    def _send(self) -> None:
        try:
            while not self._stopping.is_set():
                self._work.wait()
                self._work.clear()  # before draining: an append after the drain wakes us again
                self._stopping.wait(self.max_delay)  # let a batch accumulate
                self._drain()
            self._drain()  # what was queued when the stop came
        except BaseException as error:
            self.health.ended(describe_error(error))
            log.critical("shadow sender stopped; restart the API", exc_info=error)
            raise
        with self._worker_ready:  # a worker starting after this is closed by _run
            self._sender_done = True
            worker = self._worker
        if worker is not None:
            worker.close_input()

    def _drain(self) -> None:
        """Frames until the queue is empty, each up to a batch; and whether the requests
        coming next are thinned (`submit`), from the API's CPU use since the last drain."""
        self._saturated = self._cpu_use() > self.shed_above
        while self._queue:
            jobs: list[EncodedJob] = []
            rows = 0
            while self._queue and len(jobs) < MAX_BATCH_REQUESTS and rows < MAX_BATCH_ROWS:
                job = self._queue.popleft()
                jobs.append(job)
                rows += job.rows
            self._deliver(jobs)

    def _cpu_use(self) -> float:
        """The API process's CPU use since the last drain, in cores (all its threads)."""
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._last_cpu
        self._last_cpu = (wall, cpu)
        return (cpu - last_cpu) / max(wall - last_wall, 1e-3)

    def _deliver(self, jobs: list[EncodedJob]) -> None:
        """One frame to the worker, waiting for one while it (re)starts; a failed write loses
        the batch, counted (the supervisor reports why the worker went)."""
        with self._worker_ready:
            while self._worker is None and not self._stopping.is_set():
                self._worker_ready.wait()
            worker = self._worker
        try:
            if worker is None:
                raise BrokenPipeError("no shadow worker")
            header, payload = jobs_frame(jobs)
            worker.send(header, payload)
        except OSError as error:
            with self._lock:
                self.lost += len(jobs)
            log.warning(
                "shadow requests lost: no worker took them", requests=len(jobs), error=str(error)
            )

    # The supervisor: worker process -> status.

    def _supervise(self) -> None:
        """Start the worker; when it goes, restart it (1 s, 2 s, 4 s... 60 s apart; at once
        after one that lived a minute) until the API stops."""
        backoff = RESTART_SECONDS[0]
        first = True
        while not self._stopping.is_set():
            if not first:
                self.restarts += 1
            first = False
            began = time.monotonic()
            try:
                worker = WorkerProcess(self.settings)
            except OSError as error:
                self._died(f"shadow worker could not start: {describe_error(error)}")
            else:
                if self._run(worker):
                    return  # an orderly stop
            if time.monotonic() - began > STABLE_SECONDS:
                backoff = RESTART_SECONDS[0]
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, RESTART_SECONDS[1])

    def _run(self, worker: WorkerProcess) -> bool:
        """Read the worker's status until it goes; True when it ended because it was told to."""
        with self._worker_ready:
            self._worker = worker
            self.worker_pid = worker.pid
            self._worker_ready.notify_all()
            if self._sender_done:  # stopped while it started: nothing more will come
                worker.close_input()
        problem = ""
        try:
            while (frame := worker.read()) is not None:
                self.observe(frame[0])
        except Exception as error:  # noqa: BLE001 - a bad frame ends this worker, not the API
            problem = f": {describe_error(error)}"
        finally:
            with self._worker_ready:
                self._worker = None
                self.worker_pid = None
        code = worker.wait()
        if worker.closed and self._stopping.is_set() and code == 0 and not problem:
            log.info("shadow worker stopped", pid=worker.pid)
            return True
        self._died(f"shadow worker (pid {worker.pid}) {describe_exit(code)}{problem}")
        return self._stopping.is_set()

    def _died(self, reason: str) -> None:
        """A worker that went (or never came): logged, counted in errors, shown in status;
        what it had done stays counted."""
        with self._lock:
            for counter in COUNTERS:
                self._before[counter] += self._reported[counter]
                self._reported[counter] = 0
            self._deaths_in_a_row += 1
            self.health.failed(reason, _now())
            for name, health in self._mirrors.items():
                self._errors_before[name] = health.errors
        log.error("shadow worker died", reason=reason, restarts=self.restarts)

    def observe(self, report: dict[str, Any]) -> None:
        """A status frame from the worker: what it holds, what it did."""
        if report.get("kind") != "status":
            return
        self.challengers = {
            name: ChallengerState(
                state["version"],
                state["digest"],
                _parse_time(state["last_checked"]),
                state["last_error"],
            )
            for name, state in report["models"].items()
        }
        self._digests = {name: state.digest for name, state in self.challengers.items()}
        with self._lock:
            for counter in COUNTERS:
                self._reported[counter] = int(report[counter])
            self.worker_rss_bytes = report.get("rss_bytes")
            for task in report["tasks"]:
                self._mirror(self._mirrors[task["name"]], task)

    def _mirror(self, health: TaskHealth, task: dict[str, Any]) -> None:
        """The worker's record of a task, on the API's record of it (errors over all workers)."""
        worker_failures = task["consecutive_failures"]
        if task["name"] == TASK_NAME:
            if task["last_success"]:
                self._deaths_in_a_row = 0
            worker_failures += self._deaths_in_a_row
        health.errors = self._errors_before[task["name"]] + task["errors"]
        health.consecutive_failures = worker_failures
        if task["last_success"]:
            health.last_success = _parse_time(task["last_success"])
        if task["last_error"]:
            health.last_error = task["last_error"]
            health.last_error_at = _parse_time(task["last_error_at"])
        if task["name"] != TASK_NAME:
            health.running, health.stopped = task["running"], task["stopped"]


def _now() -> datetime:
    return datetime.now(UTC)
