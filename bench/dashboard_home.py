"""The dashboard benchmark's home: real trained models, then 90 days of SYNTHETIC history.

Two trainings on a small simulated fleet give both models real, verified versions in a real
MLflow server. The rest is synthetic and labelled so: copies of the newest version as one new
registered version per day (tag `bench.synthetic`), and the store rows 90 days of daily runs
over 1000 devices leave behind (evaluations, drift, training runs, device alerts, release requests
with their decisions), inserted directly instead of simulating and ingesting 90 days of raw logs;
and what the customer pages read (`write_fleet_lake`): the simulator's register of 1000 devices
and 20 customers, both models' scores of every device-hour of the 90 days and the hourly window
features of 100 sensors for the last `FEATURE_DAYS`, random numbers written by the real writers
(`write_scores`, `write_features`) to the real keys, so the pages read what production writes.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from mlflow.tracking import MlflowClient
from sqlalchemy import insert

from modelcycle.features.store import write_features
from modelcycle.features.windows import STATISTICS, FeatureSpec
from modelcycle.lake import layout
from modelcycle.lake.fleet import FLEET_COLUMNS
from modelcycle.monitoring.scoring import SCORES_SCHEMA, write_scores
from modelcycle.simulate.fleet import FleetSpec, build_fleet_plan
from modelcycle.storage import ObjectStore
from modelcycle.store import Store
from modelcycle.store.tables import (
    AlertEvent,
    AlertState,
    DriftResult,
    DriftSummary,
    Evaluation,
    ReleaseDecision,
    ReleaseRequest,
    ScoreRun,
    TrainingRun,
)

START = "2026-01-01"
TRAINED_DAYS = 3
HISTORY_DAYS = 90
DEVICES = 1000
CUSTOMERS = 20
FEATURES = 100  # drift results per model and day
SENSORS = 100  # in the features partitions the device page reads
FEATURE_DAYS = 7  # the device page's default window
SYNTHETIC_TAG = "bench.synthetic"
Row = dict[str, Any]


def _cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "modelcycle", *args], env={**os.environ, **env}, check=True
    )


def train_models(home: Path, tracking_uri: str) -> None:
    """A small simulated fleet, ingested and trained twice: two real versions of each model."""
    env = {"MODELCYCLE_HOME": str(home), "MODELCYCLE_TRACKING_URI": tracking_uri}
    _cli("simulate", "--out", str(home / "raw"), "--devices", "24", "--sensors", "10",
         "--days", str(TRAINED_DAYS), "--start", START, "--seed", "11", env=env)  # fmt: skip
    days = [(date.fromisoformat(START) + timedelta(days=i)).isoformat() for i in range(3)]
    for day in days:
        _cli("ingest", "--date", day, env=env)
    for seed in ("42", "7"):
        _cli("train", "--date", days[-1], "--window-days", str(TRAINED_DAYS), "--seed", seed,
             env=env)  # fmt: skip


def _logged_model_of(source: str) -> str | None:
    """MLflow 3 names a logged model's version source `models:/<model id>`."""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def add_daily_versions(client: MlflowClient, model: str, days: int) -> list[str]:
    """One registered version per day (copies of the newest real one, same verified files);
    every version of the model, oldest first."""
    versions = sorted(
        client.search_model_versions(f"name = '{model}'"), key=lambda v: int(v.version)
    )
    real = versions[-1]
    for _ in range(days - len(versions)):
        client.create_model_version(
            model,
            str(real.source),
            run_id=real.run_id,
            tags={**(real.tags or {}), SYNTHETIC_TAG: "true"},
            model_id=getattr(real, "model_id", None) or _logged_model_of(str(real.source)),
        )
    found = client.search_model_versions(f"name = '{model}'")
    return [str(v.version) for v in sorted(found, key=lambda v: int(v.version))]


def _at(day: date, hour: int = 3) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _evaluation(model: str, version: str, role: str, day: date, rng: random.Random) -> Row:
    n, positive = 24 * DEVICES, rng.randint(200, 400)
    accuracy = rng.uniform(0.9, 0.97)
    return {
        "model": model, "version": version, "role": role, "source": "batch", "day": day,
        "n_rows": n, "n_positive": positive, "accuracy": accuracy,
        "precision": rng.uniform(0.6, 0.9), "recall": rng.uniform(0.6, 0.9),
        "f1": rng.uniform(0.6, 0.9), "roc_auc": rng.uniform(0.8, 0.95),
        "pr_auc": rng.uniform(0.5, 0.8), "true_positives": positive // 2,
        "false_positives": positive // 4, "false_negatives": positive // 2,
        "true_negatives": n - positive - positive // 4,
        "labels_known_at": _at(day, 23), "evaluated_at": _at(day, 23),
    }  # fmt: skip


def _model_rows(
    model: str, versions: list[str], days: list[date], rng: random.Random
) -> dict[type, list[Row]]:
    """A model's 90 days: the champion moves to the day before's version weekly."""
    rows: dict[type, list[Row]] = {Evaluation: [], DriftSummary: [], DriftResult: [], ScoreRun: []}
    for i, day in enumerate(days):
        champion = versions[min(len(versions) - 2, (i // 7) * 7)]
        challenger = versions[min(len(versions) - 1, i + 1)]
        rows[Evaluation].append(_evaluation(model, champion, "champion", day, rng))
        rows[Evaluation].append(_evaluation(model, challenger, "challenger", day, rng))
        values = [rng.uniform(0, 0.4) for _ in range(FEATURES)]
        drifted = [v > 0.2 for v in values]
        rows[DriftSummary].append({
            "model": model, "version": champion, "day": day, "method": "psi", "threshold": 0.2,
            "n_features": FEATURES, "n_drifted": sum(drifted),
            "share_drifted": sum(drifted) / FEATURES, "max_value": max(values),
            "max_feature": f"s{values.index(max(values)):03d}_mean", "computed_at": _at(day),
        })  # fmt: skip
        rows[DriftResult] += [
            {"model": model, "day": day, "feature": f"s{j:03d}_mean", "value": value,
             "drifted": flag}
            for j, (value, flag) in enumerate(zip(values, drifted, strict=True))
        ]  # fmt: skip
        rows[ScoreRun].append({
            "model": model, "version": champion, "day": day, "n_windows": 24 * DEVICES,
            "location": f"scores/date={day.isoformat()}/{model}.parquet", "scored_at": _at(day),
        })  # fmt: skip
    return rows


def fleet_register() -> list[dict[str, str]]:
    """The simulator's register of DEVICES devices and CUSTOMERS customers (Zipf-like sizes)."""
    plan = build_fleet_plan(FleetSpec(devices=DEVICES, sensors=1, customers=CUSTOMERS, seed=90))
    return [{c: getattr(d, c) for c in FLEET_COLUMNS} for d in plan.devices]


def _alerts(days: list[date], rng: random.Random) -> tuple[list[Row], list[Row]]:
    """Each of the 1000 devices had one anomaly alert in the 90 days; 5 % still fire."""
    states, events = [], []
    owners = [d["customer_id"] for d in fleet_register()]
    for n in range(DEVICES):
        device, day = f"device-{n:04d}", rng.choice(days)
        firing = n % 20 == 0
        common = {
            "key": f"device_anomaly:{device}", "rule": "device_anomaly", "kind": "device",
            "severity": "warning", "summary": f"{device}: anomalous sensor readings",
            "details": {"device_id": device}, "customer_id": owners[n],
        }  # fmt: skip
        resolved = None if firing else _at(day, 9)
        states.append({**common, "status": "firing" if firing else "resolved",
                       "first_fired_at": _at(day, 4), "last_seen_at": _at(day, 8),
                       "last_notified_at": _at(day, 4), "resolved_at": resolved})  # fmt: skip
        events.append({**common, "event": "firing", "at": _at(day, 4)})
        if not firing:
            events.append({**common, "event": "resolved", "at": _at(day, 9)})
    return states, events


def _releases(model: str, versions: list[str], days: list[date]) -> list[tuple[Row, list[Row]]]:
    """A release request per daily version; all decided but the newest, which waits."""
    gates = [{"name": "metric_gate", "passed": True, "detail": "synthetic"}]
    out = []
    for i, version in enumerate(versions[2:]):
        day = days[min(i, len(days) - 1)]
        pending = version == versions[-1]
        request = {
            "model": model, "version": version, "requested_by": "system", "opened_at": _at(day),
            "state": "pending" if pending else "approved", "gate_results": gates,
            "environment": "local", "lineage": {"synthetic": True},
        }  # fmt: skip
        decision = {"actor": "system", "actor_kind": "system", "comment": "synthetic",
                    "gate_results": gates, "alias_from": None, "alias_to": None,
                    "override_reason": None}  # fmt: skip
        decisions = [{**decision, "action": "open", "at": _at(day)}]
        if not pending:
            decisions.append({**decision, "action": "approve", "at": _at(day, 5),
                              "actor": "alice", "actor_kind": "person"})  # fmt: skip
        out.append((request, decisions))
    return out


def insert_history(store: Store, versions: dict[str, list[str]], end: date) -> None:
    """The synthetic 90 days, in one transaction."""
    rng = random.Random(90)
    days = [end - timedelta(days=HISTORY_DAYS - 1 - i) for i in range(HISTORY_DAYS)]
    with store.session() as session:
        for model, known in versions.items():
            for table, rows in _model_rows(model, known, days, rng).items():
                session.execute(insert(table), rows)
            for request, decisions in _releases(model, known, days):
                added = insert(ReleaseRequest).values(**request).returning(ReleaseRequest.id)
                request_id = session.scalar(added)
                session.execute(
                    insert(ReleaseDecision), [{**d, "request_id": request_id} for d in decisions]
                )
        runs = [
            {"day": day, "status": "succeeded", "trigger": "schedule", "started_at": _at(day, 2),
             "finished_at": _at(day, 3), "error": None}
            for day in days
        ]  # fmt: skip
        session.execute(insert(TrainingRun), runs)
        states, events = _alerts(days, rng)
        session.execute(insert(AlertState), states)
        session.execute(insert(AlertEvent), events)


def _hours(day: date) -> np.ndarray:
    """Every device's 24 hours of the day, device-major as the writers sort them."""
    start = np.datetime64(day.isoformat(), "us")
    return np.tile(start + np.arange(24) * np.timedelta64(3600, "s"), DEVICES)


def _day_scores(day: date, model: str, version: str, rng: np.random.Generator) -> pa.Table:
    """Detector scores around -0.3 (threshold 0) and fault probabilities near 0 (threshold 0.5):
    about 1 % of device-hours over each threshold, so every status is shown."""
    n = 24 * DEVICES
    if model.endswith("anomaly-detector"):
        score, threshold = rng.normal(-0.3, 0.13, n), 0.0
    else:
        score, threshold = rng.beta(0.4, 12.0, n) * 3.0, 0.5
    ids = np.repeat([f"device-{i:04d}" for i in range(DEVICES)], 24)
    return pa.table(
        {
            "device_id": ids, "window_start": _hours(day),
            "model": pa.array(np.full(n, model)), "version": pa.array(np.full(n, version)),
            "score": score.astype(np.float32), "flagged": score >= threshold,
        },
        schema=SCORES_SCHEMA,
    )  # fmt: skip


def _day_features(day: date, rng: np.random.Generator) -> pa.Table:
    """`FeatureSpec.feature_names` of SENSORS sensors for every device-hour, float32."""
    n, spec = 24 * DEVICES, FeatureSpec(sensors=tuple(f"s{j:03d}" for j in range(SENSORS)))
    level = np.repeat(rng.normal(50.0, 15.0, (DEVICES, SENSORS)), 24, axis=0)
    cycle = np.sin(np.arange(n) % 24 / 24 * 2 * np.pi)[:, None] * 2.0
    mean = (level + cycle + rng.normal(0, 0.5, (n, SENSORS))).astype(np.float32)
    std = rng.lognormal(0.0, 0.35, (n, SENSORS)).astype(np.float32)
    values = {"mean": mean, "std": std, "min": mean - 2 * std, "max": mean + 2 * std,
              "delta": rng.normal(0, 1, (n, SENSORS)).astype(np.float32)}  # fmt: skip
    columns: dict[str, object] = {
        "device_id": np.repeat([f"device-{i:04d}" for i in range(DEVICES)], 24),
        "window_start": _hours(day),
        "n_readings": np.full(n, 60.0, np.float32),
    }
    for j, sensor in enumerate(spec.sensors):
        for stat in STATISTICS:
            columns[f"{sensor}_{stat}"] = values[stat][:, j]
    return pa.table(columns)


def write_fleet_lake(home: Path, versions: dict[str, str], end: date) -> None:
    """The register, 90 days of both models' scores and FEATURE_DAYS of features, ending `end`."""
    raw, lake = ObjectStore(str(home / "raw")), ObjectStore(str(home / "lake"))
    register = pa.Table.from_pylist(fleet_register())
    sink = pa.BufferOutputStream()
    pacsv.write_csv(register, sink)
    raw.write_bytes(layout.FLEET_FILE, sink.getvalue().to_pybytes())
    rng = np.random.default_rng(90)
    for back in range(HISTORY_DAYS):
        day = end - timedelta(days=back)
        for model, version in versions.items():
            write_scores(lake, day, _day_scores(day, model, version, rng))
        if back < FEATURE_DAYS:
            scratch = home / "features.parquet"
            write_features(_day_features(day, rng), scratch)
            lake.put_file(scratch, layout.features_partition(day))
            scratch.unlink()
