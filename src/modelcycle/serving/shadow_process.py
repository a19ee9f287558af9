"""One shadow worker process, seen from the API: started with two pipes, at the lowest priority.

`subprocess` with `python -m modelcycle.serving.shadow_worker` rather than multiprocessing:
"spawn" would pickle its arguments and re-import the API's `__main__` (uvicorn's); here the two
sides share nothing but two pipes carrying frames (serving/shadow_jobs.py), and the worker's
command line is one a person can read in `ps`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

import structlog

from modelcycle.serving.shadow_jobs import Buffer, read_frame, write_frame
from modelcycle.settings import Settings

log = structlog.get_logger(__name__)

LOWEST_PRIORITY = 19  # nice
EXIT_TIMEOUT_SECONDS = 30.0
PIPE_BUFFER_BYTES = 1 << 20


def worker_settings(settings: Settings) -> dict[str, Any]:
    """The API's settings for the worker, secrets left out (it reads the environment for any
    it needs; none of its work does): sent in a frame, never on a command line."""
    secrets = {
        name
        for name, value in settings
        if type(value).__name__ == "SecretStr"  # pydantic's SecretStr, whichever its import
    }
    return settings.model_dump(mode="json", exclude=secrets)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class WorkerProcess:
    """The child and the API's ends of its pipes; writes are serialised (sender, webhook)."""

    def __init__(self, settings: Settings):
        to_child, jobs_in = os.pipe()  # the worker reads jobs from `to_child`
        status_out, from_child = os.pipe()  # and writes status to `from_child`
        command = [sys.executable, "-m", "modelcycle.serving.shadow_worker"]
        try:
            self.process = subprocess.Popen(
                [*command, str(to_child), str(from_child)],
                stdin=subprocess.DEVNULL,
                pass_fds=(to_child, from_child),
            )
        except BaseException:
            os.close(jobs_in)
            os.close(status_out)
            raise
        finally:  # the worker's ends are its own now
            os.close(to_child)
            os.close(from_child)
        self.pid = self.process.pid
        _lower_priority(self.pid)
        self._jobs: IO[bytes] = os.fdopen(jobs_in, "wb", buffering=PIPE_BUFFER_BYTES)
        self._status: IO[bytes] = os.fdopen(status_out, "rb", buffering=PIPE_BUFFER_BYTES)
        self._write_lock = threading.Lock()
        self.closed = False
        self.send({"kind": "config", "settings": worker_settings(settings)})

    def send(self, header: dict[str, Any] | bytes, payload: list[Buffer] | None = None) -> None:
        """One frame to the worker; blocks while its pipe is full. OSError once it is gone."""
        with self._write_lock:
            if self.closed:
                raise BrokenPipeError("the shadow worker's input is closed")
            write_frame(self._jobs, header, payload or [])

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        return read_frame(self._status)

    def close_input(self) -> None:
        """Tell the worker to finish: it scores what it received, flushes, and exits."""
        with self._write_lock:
            if self.closed:
                return
            self.closed = True
            try:
                write_frame(self._jobs, {"kind": "stop"})
                self._jobs.close()
            except OSError:
                pass  # already gone: the supervisor reports how it ended

    def wait(self, timeout: float = EXIT_TIMEOUT_SECONDS) -> int | None:
        """Its exit code; a worker that does not exit in time is killed (and logged)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("shadow worker did not exit in time; killing it", pid=self.pid)
            self.process.kill()
            code = self.process.wait()
        self._status.close()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self._jobs.close()
        return code


def _lower_priority(pid: int) -> None:
    """Nice 19 and SCHED_IDLE for the whole worker (its threads inherit both): it runs only when
    nothing else wants the CPU, and a waking answer preempts it at once (at nice 19 alone it
    could finish its time slice first). Set by the API right after the start, so it covers the
    worker's imports too."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, LOWEST_PRIORITY)
        if hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except OSError as error:
        log.warning("shadow worker runs at normal CPU priority", error=str(error))
