"""The shadow worker process: `python -m modelcycle.serving.shadow_worker IN_FD OUT_FD`.

Started (nice 19, SCHED_IDLE) and supervised by the API (serving/shadow.py). Its own
interpreter, so its Python work (unpacking batches, building log rows) never holds the API's GIL,
and the OS scheduler really runs the answers first. It loads the challenger with the same
`ModelManager` as the API (sha256-checked ONNX, cache, alias poll, hot swap), scores the batches
the API sends, writes `lake/shadow/` through a `PredictionLog`, and reports what it did as small
status frames (at most one per REPORT_SECONDS while batches arrive).
A closed input pipe (the API stopping, or gone) ends it: it scores what it received, flushes its
log, reports once more and exits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog
from pydantic import ValidationError

from modelcycle.errors import ModelcycleError
from modelcycle.observability import configure_logging
from modelcycle.registry.loading import RegistrySource
from modelcycle.serving.background import TaskHealth, run_round
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.manager import ModelManager, describe_error
from modelcycle.serving.prediction_log import SHADOW_TABLE, PredictionLog
from modelcycle.serving.shadow_jobs import decode_jobs, features_digest, read_frame, write_frame
from modelcycle.serving.shadow_scoring import BatchScorer
from modelcycle.settings import Settings
from modelcycle.storage import open_store

log = structlog.get_logger(__name__)

POLL_TASK = "shadow_poll"
LOG_TASK = "shadow_log"
# At most one status frame this often while batches arrive: each wakes the API's supervisor
# thread, which takes the API's GIL from the answers for a moment.
REPORT_SECONDS = 0.5


def rss_bytes() -> int:
    """This process's resident memory now (Linux), for the API's status and the benchmark."""
    try:
        statm = Path("/proc/self/statm").read_text()
        return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Worker:
    """The challenger, its log and its counters, reported to the API after every change."""

    def __init__(self, settings: Settings, status: IO[bytes]):
        self.settings = settings
        self._status = status
        self._status_lock = threading.Lock()  # the poll thread and the main loop both report
        self._stop = threading.Event()
        self._scored = threading.Event()  # batches scored since the last status frame
        self.manager = ModelManager(
            names=settings.model_names,
            alias=settings.serving_shadow_alias,
            source=RegistrySource(settings),
            cache=ArtifactCache(settings.resolved_serving_cache_dir),
            optional=True,
        )
        lake = open_store(
            settings.resolved_lake_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            gcs_endpoint_url=settings.gcs_endpoint_url,
        )
        self.poll_health = TaskHealth(POLL_TASK)
        self.shadow_log = PredictionLog(
            lake,
            flush_seconds=settings.serving_log_flush_seconds,
            health=TaskHealth(LOG_TASK),
            table=SHADOW_TABLE,
        )
        self.scorer = BatchScorer(self.manager, self.shadow_log, max_rows=settings.serving_max_rows)

    def run(self, jobs: IO[bytes]) -> None:
        """Load the challenger (cache, then one poll: a request is never sent before the API
        has heard of a challenger, so the first batch finds it), then score until told to stop."""
        self.scorer.health.started()
        self.poll_health.started()
        self.shadow_log.start()
        self.manager.start_from_cache()
        run_round(self.poll_health, self.manager.poll)
        self.report()
        poller = threading.Thread(target=self._poll, name="shadow-poll", daemon=True)
        poller.start()
        reporter = threading.Thread(target=self._report_scored, name="shadow-report", daemon=True)
        reporter.start()
        try:
            self._serve(jobs)
        finally:
            self._stop.set()
            self._scored.set()
            reporter.join()
            self.shadow_log.stop()  # the shutdown flush
            self.scorer.health.ended(None)
            self.poll_health.ended(None)
            self.report(final=True)

    def _serve(self, jobs: IO[bytes]) -> None:
        while (frame := read_frame(jobs)) is not None:
            header, payload = frame
            if header["kind"] == "stop":
                return
            if header["kind"] == "refresh":
                threading.Thread(target=self._refresh, args=(header["model"],)).start()
                continue
            if header["kind"] == "jobs":
                self.scorer.score(decode_jobs(header, payload))
                self._scored.set()

    def _report_scored(self) -> None:
        """Report scored batches, at most once per REPORT_SECONDS (the final report is run's)."""
        while True:
            self._scored.wait()
            if self._stop.is_set():
                return
            self._scored.clear()
            try:
                self.report()
            except Exception as error:  # the reporter outlives a status it cannot build
                self.scorer.health.failed(describe_error(error), datetime.now(UTC))
                log.exception("shadow worker could not build its status")
            self._stop.wait(REPORT_SECONDS)

    def _refresh(self, name: str) -> None:
        """The webhook's reload, off the scoring loop (a download may take seconds)."""
        if name in self.manager.names:
            self.manager.refresh(name)
            self.report()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.serving_poll_seconds):
            run_round(self.poll_health, self.manager.poll)
            self.report()

    def report(self, *, final: bool = False) -> None:
        """Send the status frame; a gone API is not an error here (the input pipe ends us)."""
        models: dict[str, dict[str, Any]] = {}
        for name in self.manager.names:
            held, status = self.manager.describe(name)
            models[name] = {
                "version": held.record.version if held else None,
                "digest": features_digest(held.features) if held else "",
                "last_checked": status.last_checked,
                "last_error": status.last_error,
            }
        scorer = self.scorer
        header = {
            "kind": "status",
            "final": final,
            "pid": os.getpid(),
            "rss_bytes": rss_bytes(),
            "requests_scored": scorer.requests_scored,
            "rows_scored": scorer.rows_scored,
            "batches": scorer.batches,
            "rows_written": self.shadow_log.rows_written,
            "models": models,
            "tasks": [scorer.health, self.poll_health, self.shadow_log.health],
        }
        try:
            with self._status_lock:
                write_frame(self._status, header)
        except OSError as error:
            log.warning("shadow worker could not report to the API", error=describe_error(error))


def main(argv: list[str]) -> int:
    """Read the settings frame, then work; the exit code says whether it ended in order."""
    # Its life follows its input pipe, not signals: Ctrl-C or a SIGTERM sent to the API's whole
    # process group must not end it before the API has sent the last batch and it has flushed
    # (the API closes the pipe at shutdown; the pipe also closes if the API dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    jobs = os.fdopen(int(argv[0]), "rb", buffering=1 << 20)
    status = os.fdopen(int(argv[1]), "wb")
    try:
        first = read_frame(jobs)
        if first is None or first[0]["kind"] != "config":
            raise ModelcycleError("the first frame must carry the settings")
        settings = Settings(**first[0]["settings"])
    except (ModelcycleError, ValidationError) as error:
        print(f"shadow worker: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    log.info("shadow worker started", pid=os.getpid(), alias=settings.serving_shadow_alias)
    Worker(settings, status).run(jobs)
    log.info("shadow worker stopped", pid=os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
