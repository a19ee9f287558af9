"""Shadow scoring's cost to the champion, for bench/serving.py `--shadow`: the same load on
`modelcycle serve` with MODELCYCLE_SERVING_SHADOW off, then on, in alternating rounds.

The champion answers in both; with shadow on, a second version (trained with another seed, behind
the alias `bench-shadow`) also scores every request in the API's shadow worker process and writes
its scores to the lake. The figure that matters is the champion's p99 with shadow on over off, per
scenario (issue 14: under 1.10).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from mlflow.tracking import MlflowClient

from bench.report import machine_line
from bench.serving_load import (
    SCENARIOS,
    Result,
    bench_server,
    first_prediction,
    free_port,
    run_server,
    wait_for_first_poll,
)

SHADOW_ALIAS = "bench-shadow"
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


def run_rounds(
    command: list[str],
    env: dict[str, str],
    auth: dict[str, str],
    bodies: dict[int, str],
    seconds: float,
    scratch: Path,
    rounds: int,
) -> tuple[dict[str, list[Result]], list[dict[str, Any]]]:
    """`rounds` × (shadow off, shadow on), each on a fresh server; results by setting."""
    path = f"/v1/models/{MODELS[0]}/predict"
    results: dict[str, list[Result]] = {"off": [], "on": []}
    shadow_states = []
    for round_ in range(rounds):
        for setting in ("off", "on"):
            extra = {
                "MODELCYCLE_SERVING_SHADOW": "true" if setting == "on" else "false",
                "MODELCYCLE_SERVING_SHADOW_ALIAS": SHADOW_ALIAS,
                "MODELCYCLE_LAKE_URL": str(scratch / f"lake-{setting}-{round_}"),
            }
            port = free_port()
            log = scratch / f"shadow-{setting}-{round_}.log"
            name = f"shadow {setting}"
            with run_server(
                name, [*command, str(port)], {**env, **extra}, "/readyz", path, auth, port, log
            ) as server:
                first_prediction(server, bodies[1])
                wait_for_first_poll(server)
                results[setting] += bench_server(server, bodies, seconds, scratch)
                if setting == "on":
                    shadow_states.append(_shadow_state(server.url, auth))
    return results, shadow_states


def render(
    results: dict[str, list[Result]],
    states: list[dict[str, Any]],
    seconds: float,
    rounds: int,
    version: str,
) -> str:
    lines = [
        "## Shadow scoring (`make bench-serving BENCH_ARGS=--shadow`)",
        "",
        f"{machine_line()}; wrk, 1 thread, {seconds:g} s per scenario, loopback, {rounds} "
        "round(s) of shadow off then on, each on a fresh `modelcycle serve`; medians over rounds.",
        f"The champion (version 1 of the 501-feature classifier) answers; with shadow on, version "
        f"{version} also scores every request off the response path, in a worker process at nice "
        "19, and logs to the lake.",
        "",
        "| scenario | req/s off | req/s on | p99 ms off | p99 ms on | p99 on / off | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, _, _ in SCENARIOS:
        # wrk prints no percentile (nan) when a run's latencies overflow its histogram
        off = [r for r in results["off"] if r.scenario == scenario and math.isfinite(r.p99_ms)]
        on = [r for r in results["on"] if r.scenario == scenario and math.isfinite(r.p99_ms)]
        if not off or not on:
            continue
        p99_off = statistics.median(r.p99_ms for r in off)
        p99_on = statistics.median(r.p99_ms for r in on)
        lines.append(
            f"| {scenario} | {statistics.median(r.requests_per_s for r in off):,.0f} | "
            f"{statistics.median(r.requests_per_s for r in on):,.0f} | {p99_off:.2f} | "
            f"{p99_on:.2f} | {p99_on / p99_off:.2f} | "
            f"{sum(r.errors for r in off + on)} |"
        )
    scored = sum(state["requests_scored"] for state in states)
    dropped = sum(state["dropped"] for state in states)
    skipped = sum(state.get("skipped", 0) for state in states)
    lost = sum(state.get("lost", 0) for state in states)
    errors = sum(state["errors"] for state in states)
    rss = [state["worker_rss_bytes"] / 2**20 for state in states if state.get("worker_rss_bytes")]
    lines += [
        "",
        f"Shadow worker over the 'on' runs: {scored:,} requests scored, {dropped:,} dropped "
        f"(queue full: the worker process, at nice 19, gets the CPU only when the answers leave "
        f"it some), {skipped:,} skipped (not sampled), {lost:,} lost, {errors} failed; the API "
        "sends what is queued in batches, one frame each, and the worker scores each in one "
        "ONNX Runtime call. Worker process resident memory at the end of each run: "
        + (", ".join(f"{mib:.0f} MiB" for mib in rss) or "not reported")
        + " (on top of the API's).",
        f"Load average when the run ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        "above the core count, other processes shared the machine and the ratios carry noise.",
        "Target (issue 14): p99 on / off under 1.10 at the serving benchmark's load.",
    ]
    return "\n".join(lines)
