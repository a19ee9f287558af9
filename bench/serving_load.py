"""The servers under test and the load on them, for bench/serving.py: start a server, wait until it
answers, drive it with `wrk`, read its memory."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

SCENARIOS = (
    ("1 row, c1", 1, 1),
    ("1 row, c8", 1, 8),
    ("1 row, c32", 1, 32),
    ("100 rows, c8", 100, 8),
)


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    path: str
    headers: dict[str, str]
    pid: int
    cold_start_s: float


@dataclass(frozen=True)
class Result:
    server: str
    scenario: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not ready after {timeout} s")


@contextmanager
def run_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    health: str,
    path: str,
    headers: dict[str, str],
    port: int,
    log: Path,
    *,
    own_session: bool = True,
) -> Iterator[Server]:
    """`own_session`: a server with worker processes of its own (mlflow's) is stopped as a
    process group. Without it the server stays in the bench's session, and so in wrk's
    scheduler group (autogroup): the kernel ranks a shadow worker's SCHED_IDLE against wrk only
    when both are in one group; across groups, wrk, standing in for a client on another
    machine, waits behind the worker's time slices (+1 ms of p99 at one connection)."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
        try:
            _wait(url + health, process)
            yield Server(name, url, path, headers, process.pid, time.perf_counter() - started)
        finally:
            if process.poll() is None:
                if own_session:
                    os.killpg(process.pid, signal.SIGTERM)
                else:
                    process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                if own_session:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
                    process.wait()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers)."""
    total = 0
    pids = [pid]
    children = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout
    pids = [int(p) for p in children.split()] or pids
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
"""


def _duration_ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:  # wrk prints "-nan" when no request completed
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(server: Server, body: str, connections: int, seconds: float, scratch: Path) -> Result:
    """One wrk run; run again (twice at most) when wrk printed no percentile, which it does now
    and then on this machine, printing the output that lacked one."""
    for _ in range(3):
        result = _run_wrk_once(server, body, connections, seconds, scratch)
        if math.isfinite(result.p99_ms) and math.isfinite(result.p50_ms):
            break
    return result


def _run_wrk_once(
    server: Server, body: str, connections: int, seconds: float, scratch: Path
) -> Result:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in server.headers.items())
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body), headers=headers))
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            server.url + server.path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    if not (math.isfinite(p50) and math.isfinite(p99)):
        print(f"wrk printed no percentile ({server.name}, c{connections}):\n{output}", flush=True)
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in match.groups())
    return Result(server.name, "", rps, p50, p99, errors)


def bench_server(
    server: Server, bodies: dict[int, str], seconds: float, scratch: Path
) -> list[Result]:
    run_wrk(server, bodies[1], 8, min(seconds, 3.0), scratch)  # warm-up
    results = []
    for scenario, rows, connections in SCENARIOS:
        result = run_wrk(server, bodies[rows], connections, seconds, scratch)
        results.append(
            Result(
                server.name,
                scenario,
                result.requests_per_s,
                result.p50_ms,
                result.p99_ms,
                result.errors,
            )
        )
        print(
            f"{server.name:10} {scenario:13} {result.requests_per_s:9.0f} req/s  "
            f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}"
        )
    return results


def first_prediction(server: Server, body: str) -> None:
    answer = requests.post(
        server.url + server.path,
        data=body,
        timeout=30,
        headers={**server.headers, "Content-Type": "application/json"},
    )
    if answer.status_code != 200:
        raise SystemExit(f"{server.name} refused the benchmark body: {answer.text[:300]}")


def wait_for_first_poll(server: Server, timeout: float = 120.0) -> None:
    """Measure the steady state: the first registry poll (which imports MLflow) is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        models = requests.get(server.url + "/v1/models", headers=server.headers, timeout=10)
        if all(m["last_checked"] for m in models.json()["models"]):
            return
        time.sleep(0.5)
    raise SystemExit("the API never polled the registry")


@contextmanager
def registry_server(home: Path, log: Path) -> Iterator[str]:
    """`mlflow server` on the home's SQLite registry (artifacts stay where they were logged)."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"),
        *("--default-artifact-root", str(home / "artifacts"), "--no-serve-artifacts"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {"MLFLOW_DISABLE_TELEMETRY": "true"}
    with run_server("mlflow server", command, env, "/health", "/", {}, port, log) as server:
        yield server.url
