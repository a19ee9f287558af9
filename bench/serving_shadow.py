"""Shadow scoring's cost to the champion, for bench/serving.py `--shadow`: the same load on
`modelcycle serve` with MODELCYCLE_SERVING_SHADOW off, then on, in alternating rounds.

The champion answers in both; with shadow on, a second version (trained with another seed, behind
the alias `bench-shadow`) also scores every request in the API's shadow worker process and writes
its scores to the lake. The figure that matters is the champion's p99 with shadow on over off, per
scenario (issue 14: under 1.10).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from mlflow.tracking import MlflowClient

from bench.report import machine_line
from bench.serving_load import (
    SCENARIOS,
    Result,
    Server,
    first_prediction,
    free_port,
    run_server,
    run_wrk,
    wait_for_first_poll,
)
from bench.serving_paced import PACED_RATE, PACED_SCENARIO, paced_run
from bench.verdict import Conditions, Target, Verdicts, run_line

SHADOW_ALIAS = "bench-shadow"
P99_RATIO_TARGET = 1.10  # issue 14: shadow scoring must not slow the champion's answers
MODELS = ("sensor-fault-classifier", "sensor-anomaly-detector")


def ensure_challenger(home: Path, train_args: list[str]) -> str:
    """A second version of both models (trained once, seed 11) behind `bench-shadow`."""
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    if len(client.search_model_versions(f"name = '{MODELS[0]}'")) < 2:
        subprocess.run(
            [sys.executable, "-m", "modelcycle", "train", *train_args, "--seed", "11"],
            env={**os.environ, "MODELCYCLE_HOME": str(home)},
            check=True,
        )
    version = ""
    for name in MODELS:
        champion = client.get_model_version_by_alias(name, "champion").version
        versions = [v.version for v in client.search_model_versions(f"name = '{name}'")]
        version = str(max((int(v) for v in versions if v != champion), default=0))
        client.set_registered_model_alias(name, SHADOW_ALIAS, version)
    return version


def _shadow_state(url: str, headers: dict[str, str]) -> dict[str, Any]:
    state: dict[str, Any] = requests.get(f"{url}/v1/models", headers=headers, timeout=10).json()
    shadow: dict[str, Any] = state["shadow"]
    return shadow


PACED_COUNTS = ("requests_scored", "dropped", "lost", "errors")


def _settled_state(url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The shadow block once the worker has caught up (queue empty, nothing more scored)."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = _shadow_state(url, headers)
        if state["queued"] == 0 and last and state["requests_scored"] == last["requests_scored"]:
            return state
        last = state
        time.sleep(1.0)
    return last


def _wait_for_worker(url: str, headers: dict[str, str]) -> None:
    """Measure with the worker ready: started at nice 19, its imports and first load can take
    a while on a busy machine (meanwhile nothing is shadowed)."""
    deadline = time.monotonic() + 300
    while _shadow_state(url, headers)["state"] != "scoring":
        if time.monotonic() > deadline:
            raise SystemExit("the shadow worker did not report a challenger within 300 s")
        time.sleep(1.0)


def _run(server: Server, body: str, connections: int, seconds: float, scratch: Path) -> Result:
    result = run_wrk(server, body, connections, seconds, scratch)
    print(
        f"{server.name:10} c{connections:<3} {result.requests_per_s:9.0f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}",
        flush=True,
    )
    return result


def run_rounds(
    command: list[str],
    env: dict[str, str],
    auth: dict[str, str],
    bodies: dict[int, str],
    seconds: float,
    scratch: Path,
    rounds: int,
) -> tuple[dict[str, list[Result]], dict[str, Any]]:
    """Two servers started once, shadow off and on (each its own lake); then, per scenario,
    `rounds` pairs of runs back to back, the order alternating. A shared VM's speed drifts by
    tens of percent over minutes (off alone moved 3,800-5,900 req/s at c32 within an hour):
    a pair sees the same machine, a run per fresh server minutes apart did not. After each
    run with shadow on, the worker finishes its queue before the next run starts."""
    path = f"/v1/models/{MODELS[0]}/predict"
    results: dict[str, list[Result]] = {"off": [], "on": []}
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for setting in ("off", "on"):
            extra = {
                "MODELCYCLE_SERVING_SHADOW": "true" if setting == "on" else "false",
                "MODELCYCLE_SERVING_SHADOW_ALIAS": SHADOW_ALIAS,
                "MODELCYCLE_LAKE_URL": str(scratch / f"lake-{setting}"),
            }
            port = free_port()
            server = stack.enter_context(
                run_server(
                    f"shadow {setting}",
                    [*command, str(port)],
                    {**env, **extra},
                    "/readyz",
                    path,
                    auth,
                    port,
                    scratch / f"shadow-{setting}.log",
                    own_session=False,
                )
            )
            first_prediction(server, bodies[1])
            wait_for_first_poll(server)
            servers[setting] = server
        on = servers["on"]
        _wait_for_worker(on.url, auth)
        for server in servers.values():
            run_wrk(server, bodies[1], 8, min(seconds, 3.0), scratch)  # warm-up
        _settled_state(on.url, auth)
        for scenario, rows, connections in [*SCENARIOS, (PACED_SCENARIO, 1, 0)]:
            if scenario == PACED_SCENARIO:
                before = _settled_state(on.url, auth)
            for round_ in range(rounds):
                for setting in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                    server = servers[setting]
                    if connections:
                        result = _run(server, bodies[rows], connections, seconds, scratch)
                    else:
                        result = paced_run(server, bodies[1], seconds)
                    results[setting].append(replace(result, scenario=scenario))
                    if setting == "on" and connections:
                        _settled_state(on.url, auth)
        after = _settled_state(on.url, auth)
    paced = {key: after[key] - before[key] for key in PACED_COUNTS}
    sent = round(PACED_RATE * seconds) * rounds
    return results, {**after, "paced": paced, "paced_sent": sent}


def pair_ratios(results: dict[str, list[Result]], scenario: str) -> list[float]:
    """p99 on / off of each pair of runs (runs without a percentile left out)."""
    off = [r.p99_ms for r in results["off"] if r.scenario == scenario]
    on = [r.p99_ms for r in results["on"] if r.scenario == scenario]
    return [b / a for a, b in zip(off, on, strict=True) if math.isfinite(a) and math.isfinite(b)]


def judge(results: dict[str, list[Result]], state: dict[str, Any]) -> Verdicts:
    """Per scenario the median over pairs of the champion's p99 on / off; at the moderate load
    every request shadow-scored."""
    verdicts = Verdicts("serving-shadow")
    for scenario in [name for name, _, _ in SCENARIOS] + [PACED_SCENARIO]:
        ratios = pair_ratios(results, scenario)
        if not ratios:  # wrk prints no percentile when a run's latencies overflow its histogram
            verdicts.add(Target(f"p99 on / off, {scenario} (no percentile)", math.inf, 1.1))
            continue
        median = statistics.median(ratios)
        verdicts.add(Target(f"p99 on / off, {scenario}", median, P99_RATIO_TARGET, "×"))
    verdicts.add(
        Target(
            f"shadow-scored at {PACED_SCENARIO}",
            state["paced"]["requests_scored"],
            state["paced_sent"],
            "",
            higher_is_better=True,
            digits=0,
        )
    )
    return verdicts


def render(
    results: dict[str, list[Result]],
    state: dict[str, Any],
    seconds: float,
    rounds: int,
    version: str,
    conditions: Conditions,
    verdicts: Verdicts,
) -> str:
    lines = [
        "## Shadow scoring (`make bench-shadow`)",
        "",
        f"{machine_line()}; wrk, 1 thread, {seconds:g} s a run, loopback. Two `modelcycle serve` "
        f"started once, shadow off and on; per scenario {rounds} pairs of runs back to back "
        "(off then on, then on then off...), so that both settings see the same machine; the "
        "ratio is the median of the pairs' ratios. Both run in the bench's session, so in wrk's "
        "scheduler group: a client on another machine never waits behind the shadow worker, "
        "and under autogroup wrk in another group did (bench/serving_load.run_server). "
        f"The champion (version 1 of the 501-feature classifier) answers; with shadow on, version "
        f"{version} also scores every request off the response path, in a worker process "
        "(SCHED_IDLE, nice 19), and logs to the lake.",
        "",
        "| scenario | req/s off | req/s on | p99 ms off | p99 ms on | p99 on / off, each pair "
        "| median | errors |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for scenario in [name for name, _, _ in SCENARIOS] + [PACED_SCENARIO]:
        ratios = pair_ratios(results, scenario)
        off = [r for r in results["off"] if r.scenario == scenario]
        on = [r for r in results["on"] if r.scenario == scenario]
        if not ratios:
            continue
        lines.append(
            f"| {scenario} | {statistics.median(r.requests_per_s for r in off):,.0f} | "
            f"{statistics.median(r.requests_per_s for r in on):,.0f} | "
            f"{statistics.median(r.p99_ms for r in off):.2f} | "
            f"{statistics.median(r.p99_ms for r in on):.2f} | "
            f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} | {statistics.median(ratios):.2f} | "
            f"{sum(r.errors for r in off + on)} |"
        )
    paced = state["paced"]
    rss = state.get("worker_rss_bytes")
    lines += [
        "",
        f"At the moderate load ({PACED_SCENARIO}, one connection, a Python client; its p99 "
        f"includes the client's own timing noise): {state['paced_sent']:,} requests sent with "
        f"shadow on, {paced['requests_scored']:,} shadow-scored, {paced['dropped']:,} dropped, "
        f"{paced['lost']:,} lost, {paced['errors']} failed.",
        f"Shadow worker over the whole run: {state['requests_scored']:,} requests scored, "
        f"{state['dropped']:,} dropped (queue full: the worker gets the CPU only when nothing "
        f"else wants it), {state.get('skipped', 0):,} skipped (not sampled), "
        f"{state.get('shed', 0):,} shed (sent 1 in 10 while the API was saturated), "
        f"{state.get('lost', 0):,} lost, {state['errors']} failed; the API encodes each request "
        "as it answers, sends what is queued in frames of up to 256 requests, and the worker "
        "scores each frame in one ONNX Runtime call. Worker resident memory at the end: "
        + (f"{rss / 2**20:.0f} MiB" if rss else "not reported")
        + " (on top of the API's).",
        run_line(conditions),
        "",
        f"Targets (issue 14): the champion's p99 with shadow on within {P99_RATIO_TARGET:.2f}× of "
        "off in every scenario; at the moderate load, every request shadow-scored.",
        "",
        verdicts.table(),
    ]
    return "\n".join(lines)
