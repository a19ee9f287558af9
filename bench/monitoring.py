"""The daily monitoring job on one reference-scale day, against MLflow's own scoring path.

Setup (timed, not part of the result): a fresh modelcycle home with MLflow on SQLite, a simulated
fleet (3 days, plus a 4th so the maintenance ledger is kept past the evaluated day), the 3 days
ingested, both models trained on the first 2 days (so each has a champion).

Measured on day 3:

- the real CLI, each command its own process, wall clock (Python start-up and imports included):
  `modelcycle score`, `modelcycle evaluate`, `modelcycle alerts check` (default rules);
- the same three steps in one process through the domain functions (`score_day`,
  `evaluate_day`, `build_facts` + `check`), imports done before the clock starts;
- the peer, in the same run: what a team gluing MLflow by hand would write to score the day,
  `mlflow.pyfunc.load_model("models:/NAME@champion").predict(DataFrame)` for both models, against
  modelcycle's own load-and-predict (registry lookup, sha256-verified ONNX, ONNX Runtime).

The day's feature partition is deleted before each scoring, so both scorings build the features
from the readings, as the daily job does after ingest. Run with `make bench-monitoring`; results
go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.monitoring_report import PEER_REPEATS, render_markdown
from bench.report import write_section
from bench.steps import Step, clean_env, cli_step, ledger_kept_until, python_step
from bench.verdict import Conditions, Verdicts
from bench.workfolder import SETUP_FILE, add_work_arguments, work_folder

START = date(2026, 3, 2)
SEED = 7
SIMULATED_DAYS = 4  # the 4th day only keeps the maintenance ledger going past day 3

SIMULATE = """
import sys
from datetime import date
from pathlib import Path
from modelcycle.simulate import FleetSpec, simulate_fleet
spec = FleetSpec(devices=int(sys.argv[2]), sensors=int(sys.argv[3]), days=int(sys.argv[4]),
                 start=date.fromisoformat(sys.argv[5]), seed=int(sys.argv[6]))
simulate_fleet(spec, Path(sys.argv[1]))
"""

# The three steps through the domain functions, in one process; imports before the clock.
IN_PROCESS = """
import json, sys, time
started = time.perf_counter()
from datetime import UTC, date, datetime
from modelcycle.alerting.engine import check
from modelcycle.alerting.facts import build_facts
from modelcycle.alerting.rules_file import load_rules
from modelcycle.cli.context import lake_store, raw_store
from modelcycle.monitoring.daily import Monitoring, evaluate_day, score_day
from modelcycle.settings import Settings
from modelcycle.store import open_store
imported = time.perf_counter() - started
day = date.fromisoformat(sys.argv[1])
evaluated = date.fromisoformat(sys.argv[2])
settings = Settings()
seconds, cpu = {}, {}

def monitoring():
    return Monitoring(settings=settings, lake=lake_store(settings), raw=raw_store(settings),
                      store=open_store(settings))

started, cpu_started = time.perf_counter(), time.process_time()
m = monitoring()
score_day(m, day)
m.store.close()
seconds["score"] = time.perf_counter() - started
cpu["score"] = time.process_time() - cpu_started

started, cpu_started = time.perf_counter(), time.process_time()
m = monitoring()
evaluate_day(m, evaluated)
m.store.close()
seconds["evaluate"] = time.perf_counter() - started
cpu["evaluate"] = time.process_time() - cpu_started

started, cpu_started = time.perf_counter(), time.process_time()
store = open_store(settings)
facts = build_facts(settings, store, lake=lake_store(settings), raw=raw_store(settings),
                    now=datetime.now(UTC))
result = check(store, load_rules(settings.alert_rules), facts)
store.close()
seconds["alerts check"] = time.perf_counter() - started
cpu["alerts check"] = time.process_time() - cpu_started
print(json.dumps({"imports": imported, "seconds": seconds, "cpu": cpu, "firing": result.firing,
                  "rule_errors": result.rule_errors}))
"""

# Scoring the day's features: MLflow's pyfunc (the peer) against modelcycle's ONNX path.
PEER = """
import json, statistics, sys, time
from datetime import date
import mlflow
import mlflow.pyfunc
import numpy as np
import pyarrow.parquet as pq
from modelcycle.cli.context import lake_store, raw_store
from modelcycle.lake import layout
from modelcycle.monitoring.daily import Monitoring
from modelcycle.monitoring.scoring import feature_matrix, predict_all
from modelcycle.registry.versions import CHAMPION
from modelcycle.settings import Settings
from modelcycle.store import open_store

day, repeats = date.fromisoformat(sys.argv[1]), int(sys.argv[2])
settings = Settings()
mlflow.set_tracking_uri(settings.resolved_tracking_uri)
mlflow.set_registry_uri(settings.resolved_tracking_uri)
lake = lake_store(settings)
table = pq.read_table(lake.path(layout.features_partition(day)))
# What a team would hand to pyfunc: the day's features as a float32 DataFrame (not timed).
frame = table.drop_columns(table.column_names[:2]).to_pandas().astype("float32")
names = settings.model_names


def peer():
    out = {}
    for name in names:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        columns = model.metadata.get_input_schema().input_names()
        out[name] = np.asarray(model.predict(frame[columns])).reshape(-1)
    return out


def ours():
    m = Monitoring(settings=settings, lake=lake, raw=raw_store(settings),
                   store=open_store(settings))
    out = {}
    for name in names:
        served = m.open(name, CHAMPION)
        out[name] = predict_all(served, feature_matrix(table, served.model.features))
    m.store.close()
    return out


times = {"peer": [], "ours": []}
results = {}
for _ in range(repeats):
    for label, run in (("peer", peer), ("ours", ours)):
        started = time.perf_counter()
        results[label] = run()
        times[label].append(time.perf_counter() - started)
difference = max(float(np.max(np.abs(results["peer"][n] - results["ours"][n]))) for n in names)
print(json.dumps({"times": times, "median": {k: statistics.median(v) for k, v in times.items()},
                  "rows": table.num_rows, "n_features": frame.shape[1],
                  "max_abs_difference": difference}))
"""


def _evaluated_day(raw: Path, days: list[date]) -> date:
    """The first of `days` (newest first) whose labels are in: the ledger is kept past its end."""
    kept = ledger_kept_until(raw)
    for day in days:
        if kept is not None and kept >= datetime.combine(
            day + timedelta(days=1), datetime.min.time()
        ):
            return day
    raise SystemExit(f"the maintenance ledger (kept until {kept}) covers none of {days}")


def _drop_features(home: Path, day: date) -> None:
    """So that scoring builds the day's features from its readings, as after a fresh ingest."""
    from modelcycle.lake import layout

    shutil.rmtree(home / "lake" / layout.features_folder(day), ignore_errors=True)


def _last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


def _setup(args: argparse.Namespace, home: Path, env: dict[str, str], logs: Path) -> list[Step]:
    days = [START + timedelta(days=i) for i in range(SIMULATED_DAYS)]
    steps = [
        python_step(
            "simulate",
            SIMULATE,
            [
                str(home / "raw"),
                str(args.devices),
                str(args.sensors),
                str(SIMULATED_DAYS),
                START.isoformat(),
                str(SEED),
            ],
            env,
            logs,
        )
    ]
    for day in days[:3]:
        steps.append(
            cli_step(f"ingest {day}", ["ingest", "--date", day.isoformat()], env, logs, check=True)
        )
    train = ["train", "--date", days[1].isoformat(), "--window-days", "2", "--json"]
    steps.append(cli_step("train", train, env, logs, check=True))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_work_arguments(parser)
    args = parser.parse_args()
    with work_folder(args, "monitoring") as (work, reuse):
        print(f"work folder {work} ({args.devices} devices × {args.sensors} sensors)")
        _bench(args, work, clean_env(work / "home"), reuse=reuse)


def _bench(args: argparse.Namespace, work: Path, env: dict[str, str], *, reuse: bool) -> None:
    home, logs = work / "home", work / "logs"
    if reuse:
        saved = json.loads((work / SETUP_FILE).read_text())
        if (saved["devices"], saved["sensors"]) != (args.devices, args.sensors):
            raise SystemExit(f"{work} was set up for {saved['devices']} × {saved['sensors']}")
        setup = [Step(**step) for step in saved["steps"]]
        print(f"reusing the setup in {work}")
    else:
        print("setup (not part of the result)")
        setup = _setup(args, home, env, logs)
        record = {
            "devices": args.devices,
            "sensors": args.sensors,
            "steps": [asdict(s) for s in setup],
        }
        (work / SETUP_FILE).write_text(json.dumps(record))
    day = START + timedelta(days=2)
    evaluated = _evaluated_day(home / "raw", [day, day - timedelta(days=1)])
    if evaluated != day:
        print(f"warning: the ledger does not cover {day}; evaluating {evaluated}")
    conditions = Conditions()

    print(f"CLI, one process per command, scoring {day}")
    _drop_features(home, day)
    cli = [
        cli_step(
            "cli score", ["score", "--date", day.isoformat(), "--json"], env, logs, check=True
        ),
        cli_step(
            "cli evaluate",
            ["evaluate", "--date", evaluated.isoformat(), "--json"],
            env,
            logs,
            check=True,
        ),
        cli_step("cli alerts check", ["alerts", "check", "--json"], env, logs, check=False),
    ]
    print("CLI, the daily command a scheduler runs: `monitor daily` (one process)")
    _drop_features(home, day)
    daily = cli_step(
        "cli monitor daily",
        ["monitor", "daily", "--date", day.isoformat(), "--evaluate-date", evaluated.isoformat()],
        env,
        logs,
        check=False,
    )
    scored = _last_json_array(cli[0].stdout)
    evaluation = _last_json_array(cli[1].stdout)
    alerts = json.loads(cli[2].stdout) if cli[2].stdout.strip().startswith("{") else {}

    print("in one process (domain functions, imports before the clock)")
    _drop_features(home, day)
    inproc_step = python_step(
        "in-process", IN_PROCESS, [day.isoformat(), evaluated.isoformat()], env, logs
    )
    inproc = _last_json(inproc_step.stdout)

    print(
        f"peer: mlflow.pyfunc load + predict vs modelcycle's ONNX load + predict, ×{PEER_REPEATS}"
    )
    peer_step = python_step("peer", PEER, [day.isoformat(), str(PEER_REPEATS)], env, logs)
    peer = _last_json(peer_step.stdout)
    conditions.finish()
    verdicts = Verdicts("monitoring")

    markdown = render_markdown(
        args,
        setup,
        cli,
        daily,
        inproc,
        peer,
        scored,
        evaluation,
        alerts,
        day,
        evaluated,
        conditions,
        verdicts,
    )
    if not args.no_docs:
        write_section("monitoring", markdown)
    print(markdown)
    verdicts.finish(conditions)


def _last_json_array(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    assert isinstance(data, list)
    return data


if __name__ == "__main__":
    main()
