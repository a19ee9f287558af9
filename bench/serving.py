"""The prediction API under load, against `mlflow models serve` and a bare handler, in one run.

Four servers answer for the same registered LightGBM classifier (100 sensors, 501 features):

- modelcycle: `modelcycle serve` with API keys, validation, metrics and the prediction log on;
- mlflow: `mlflow models serve` of the same registered version (the peer a user gets for free),
  sent both of its input forms (`dataframe_split`, and column-wise `inputs`);
- bare: FastAPI + ONNX Runtime in ~20 lines (bench/serving_bare.py), what a user would write;
- floor: raw ASGI + orjson + ONNX Runtime (bench/serving_floor.py), the true lower bound.

Each target is judged (bench/serving_report.py) and `make bench-serving` fails when one is missed.

Load comes from `wrk` (one thread) on loopback: single rows at concurrency 1, 8 and 32, and
100-row batches at concurrency 8. Results and ratios go to docs/benchmarks.md. Run with
`make bench-serving` (`--quick` for a smoke run). `--shadow` instead measures what shadow scoring
costs the champion (bench/serving_shadow.py): the same load with it off, then on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import requests

from bench import serving_shadow
from bench.report import write_section
from bench.serving_load import (
    Result,
    bench_server,
    first_prediction,
    free_port,
    registry_server,
    rss_mib,
    run_server,
    wait_for_first_poll,
)
from bench.serving_report import judge, render
from bench.verdict import Conditions

DATA = Path(__file__).resolve().parent / ".data" / "serving-home"
START = "2026-01-01"
DAYS = 3
MODEL = "sensor-fault-classifier"
API_KEY = "bench-key"


def _cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "modelcycle", *args], env={**os.environ, **env}, check=True
    )


def prepare_home() -> Path:
    """A home with two days ingested and one training: the registry the servers read."""
    marker = DATA / "prepared"
    if marker.exists():
        return DATA
    shutil.rmtree(DATA, ignore_errors=True)
    env = {"MODELCYCLE_HOME": str(DATA)}
    _cli(
        "simulate",
        "--out",
        str(DATA / "raw"),
        "--devices",
        "40",
        "--sensors",
        "100",
        "--days",
        str(DAYS),
        "--start",
        START,
        "--seed",
        "7",
        env=env,
    )
    days = [f"2026-01-0{i + 1}" for i in range(DAYS)]
    for day in days:
        _cli("ingest", "--date", day, env=env)
    _cli("train", "--date", days[-1], "--window-days", str(DAYS), env=env)
    marker.touch()
    return DATA


def feature_rows(home: Path, features: list[str], n: int) -> list[list[float | None]]:
    table = pq.read_table(home / "lake" / "features" / f"date={START}" / "part-0.parquet")
    matrix = np.column_stack(
        [table.column(f).to_numpy(zero_copy_only=False) for f in features]
    ).astype(np.float64)[:n]
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--quick", action="store_true", help="2 s per scenario: a smoke run")
    parser.add_argument(
        "--shadow", action="store_true", help="only shadow scoring off vs on (the champion's p99)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="pairs of runs (off, on) per scenario with --shadow"
    )
    args = parser.parse_args()
    seconds = 2.0 if args.quick else args.duration
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    home = prepare_home()
    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    # modelcycle reads the registry from a tracking server, as deployed (docs/deployment.md);
    # `mlflow models serve` reads the same SQLite file directly.
    with registry_server(home, scratch / "registry.log") as registry:
        _bench(args, seconds, home, scratch, registry)


def _bench(
    args: argparse.Namespace, seconds: float, home: Path, scratch: Path, registry: str
) -> None:
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    results: list[Result] = []
    facts: dict[str, tuple[float, float]] = {}

    env = {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_TRACKING_URI": registry,
        "MODELCYCLE_API_KEYS": API_KEY,
        "MODELCYCLE_LOG_FORMAT": "json",
        "MODELCYCLE_SERVING_CACHE_DIR": str(scratch / "cache"),
    }
    ours = [sys.executable, "-m", "modelcycle", "serve", "--port"]
    auth = {"Authorization": f"Bearer {API_KEY}"}
    path = f"/v1/models/{MODEL}/predict"

    # First start fills the cache from the registry; the cold start we report is a restart.
    port = free_port()
    with run_server(
        "modelcycle", [*ours, str(port)], env, "/readyz", path, auth, port, scratch / "first.log"
    ) as first:
        features = requests.get(first.url + "/v1/models", headers=auth, timeout=10).json()
        names = next(m["features"] for m in features["models"] if m["name"] == MODEL)
        first_start = first.cold_start_s
    rows = feature_rows(home, names, 100)
    bodies = {n: json.dumps({"instances": rows[:n]}) for n in (1, 100)}
    if args.shadow:
        last_day = f"2026-01-0{DAYS}"
        version = serving_shadow.ensure_challenger(
            home, ["--date", last_day, "--window-days", str(DAYS)]
        )
        conditions = Conditions()
        by_setting, state = serving_shadow.run_rounds(
            ours, env, auth, bodies, seconds, scratch, args.rounds
        )
        conditions.finish()
        verdicts = serving_shadow.judge(by_setting, state)
        report = serving_shadow.render(
            by_setting, state, seconds, args.rounds, version, conditions, verdicts
        )
        write_section("serving-shadow", report)
        print(report)
        shutil.rmtree(scratch, ignore_errors=True)
        verdicts.finish(conditions)
        return
    mlflow_bodies = {
        n: json.dumps({"dataframe_split": {"columns": names, "data": rows[:n]}}) for n in (1, 100)
    }
    mlflow_inputs = {
        n: json.dumps(
            {"inputs": {name: [row[i] for row in rows[:n]] for i, name in enumerate(names)}}
        )
        for n in (1, 100)
    }
    conditions = Conditions()

    port = free_port()
    with run_server(
        "modelcycle", [*ours, str(port)], env, "/readyz", path, auth, port, scratch / "ours.log"
    ) as server:
        first_prediction(server, bodies[1])
        wait_for_first_poll(server)
        results += bench_server(server, bodies, seconds, scratch)
        facts["modelcycle"] = (server.cold_start_s, rss_mib(server.pid))

    onnx_path = scratch / "model.onnx"
    onnx_path.write_bytes(next((scratch / "cache").rglob("*.onnx")).read_bytes())
    for name, module in (("bare", "bench.serving_bare:app"), ("floor", "bench.serving_floor:app")):
        port = free_port()
        with run_server(
            name,
            _uvicorn(module, port),
            {"BARE_MODEL_PATH": str(onnx_path)},
            "/ping",
            "/predict",
            {},
            port,
            scratch / f"{name}.log",
        ) as server:
            first_prediction(server, bodies[1])
            results += bench_server(server, bodies, seconds, scratch)
            facts[name] = (server.cold_start_s, rss_mib(server.pid))

    port = free_port()
    peer = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{MODEL}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with run_server(
        "mlflow",
        peer,
        {
            "MLFLOW_TRACKING_URI": tracking,
            # mlflow execs `uvicorn` by name: the venv's bin must be on PATH.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        "/ping",
        "/invocations",
        {},
        port,
        scratch / "mlflow.log",
    ) as server:
        first_prediction(server, mlflow_bodies[1])
        results += bench_server(server, mlflow_bodies, seconds, scratch)
        facts["mlflow"] = (server.cold_start_s, rss_mib(server.pid))
        # MLflow's other input form: column-wise `inputs`, no DataFrame split to parse.
        inputs = replace(server, name="mlflow inputs")
        first_prediction(inputs, mlflow_inputs[1])
        results += bench_server(inputs, mlflow_inputs, seconds, scratch)

    conditions.finish()
    verdicts = judge(results, facts)
    markdown = render(results, facts, first_start, seconds, conditions, verdicts)
    write_section("serving", markdown)
    print(markdown)
    shutil.rmtree(scratch, ignore_errors=True)
    verdicts.finish(conditions)


def _uvicorn(module: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        module,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


if __name__ == "__main__":
    main()
