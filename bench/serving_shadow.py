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
import time
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
                if setting == "on":
                    _wait_for_worker(server.url, auth)
                results[setting] += bench_server(server, bodies, seconds, scratch)
                before = _settled_state(server.url, auth) if setting == "on" else {}
                results[setting].append(paced_run(server, bodies[1], seconds))
                if setting == "on":
                    after = _settled_state(server.url, auth)
                    paced = {key: after[key] - before[key] for key in PACED_COUNTS}
                    shadow_states.append({**after, "paced": paced})
    return results, shadow_states


def judge(
    results: dict[str, list[Result]], states: list[dict[str, Any]], seconds: float
) -> Verdicts:
    """Per scenario the champion's p99 on / off (median over rounds); at the moderate load every
    request shadow-scored."""
    verdicts = Verdicts("serving-shadow")
    for scenario in [name for name, _, _ in SCENARIOS] + [PACED_SCENARIO]:
        # wrk prints no percentile (nan) when a run's latencies overflow its histogram
        off = [r for r in results["off"] if r.scenario == scenario and math.isfinite(r.p99_ms)]
        on = [r for r in results["on"] if r.scenario == scenario and math.isfinite(r.p99_ms)]
        if not off or not on:
            verdicts.add(Target(f"p99 on / off, {scenario} (no percentile)", math.inf, 1.1))
            continue
        ratio = statistics.median(r.p99_ms for r in on) / statistics.median(r.p99_ms for r in off)
        verdicts.add(Target(f"p99 on / off, {scenario}", ratio, P99_RATIO_TARGET, "×"))
    sent = round(PACED_RATE * seconds) * len(states)
    scored = sum(state["paced"]["requests_scored"] for state in states)
    verdicts.add(
        Target(
            f"shadow-scored at {PACED_SCENARIO}", scored, sent, "", higher_is_better=True, digits=0
        )
    )
    return verdicts


def render(
    results: dict[str, list[Result]],
    states: list[dict[str, Any]],
    seconds: float,
    rounds: int,
    version: str,
    conditions: Conditions,
    verdicts: Verdicts,
) -> str:
    lines = [
        "## Shadow scoring (`make bench-shadow`)",
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
    for scenario in [name for name, _, _ in SCENARIOS] + [PACED_SCENARIO]:
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
    paced = {key: sum(state["paced"][key] for state in states) for key in PACED_COUNTS}
    sent = round(PACED_RATE * seconds) * len(states)
    lines += [
        "",
        f"At the moderate load ({PACED_SCENARIO}, one connection, a Python client; its p99 "
        f"includes the client's own timing noise): {sent:,} requests sent with shadow on, "
        f"{paced['requests_scored']:,} shadow-scored, {paced['dropped']:,} dropped, "
        f"{paced['lost']:,} lost, {paced['errors']} failed.",
        f"Shadow worker over the 'on' runs: {scored:,} requests scored, {dropped:,} dropped "
        f"(queue full: the worker process, at nice 19, gets the CPU only when the answers leave "
        f"it some), {skipped:,} skipped (not sampled), {lost:,} lost, {errors} failed; the API "
        "sends what is queued in batches, one frame each, and the worker scores each in one "
        "ONNX Runtime call. Worker process resident memory at the end of each run: "
        + (", ".join(f"{mib:.0f} MiB" for mib in rss) or "not reported")
        + " (on top of the API's).",
        run_line(conditions),
        "",
        f"Targets (issue 14): the champion's p99 with shadow on within {P99_RATIO_TARGET:.2f}× of "
        "off in every scenario; at the moderate load, every request shadow-scored.",
        "",
        verdicts.table(),
    ]
    return "\n".join(lines)
