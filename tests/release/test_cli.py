"""`modelcycle release`: what an approver types, and the one-line refusals."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import SYSTEM
from modelcycle.monitoring.evaluation import DayMetrics
from modelcycle.monitoring.records import replace_evaluation
from modelcycle.serving.prediction_log import SHADOW_TABLE, PredictionBatch, PredictionLog
from modelcycle.settings import Settings
from modelcycle.storage import open_store as open_object_store
from modelcycle.store import open_store
from modelcycle.training.metrics import CONFUSION, confusion_counts
from tests.release.conftest import GATES_FAILED, GATES_PASSED, aliases, releases_for
from tests.support.cli import invoke_cli
from tests.support.servers import MlflowServer


@pytest.fixture
def env(tmp_path: Path, mlflow_sqlite_server: MlflowServer) -> dict[str, str]:
    return {
        **mlflow_sqlite_server.env,
        "MODELCYCLE_HOME": str(tmp_path),
        "MODELCYCLE_ENVIRONMENT": "prod",
        "MODELCYCLE_LOG_LEVEL": "WARNING",
    }


def _ok(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = invoke_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def _refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    for word in words:
        assert word in line, line


def register_trained(
    client: MlflowClient,
    model: str,
    f1: float,
    data_hash: str,
    confusion: tuple[int, int, int, int] | None = None,
) -> str:
    """A version with a training run's params and metrics (`confusion`: tp, fp, fn, tn) and the
    tags training records."""
    experiment = client.get_experiment_by_name("release-tests") or None
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("release-tests")
    )
    run = client.create_run(experiment_id)
    for key, value in {"f1": f1, "accuracy": 0.99, "pr_auc": f1 - 0.05}.items():
        client.log_metric(run.info.run_id, key, value)
    for key, count in zip(CONFUSION, confusion or (), strict=False):
        client.log_metric(run.info.run_id, key, count)
    for param, text in {"decision_threshold": "0.5", "window_start": "2026-01-01"}.items():
        client.log_param(run.info.run_id, param, text)
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(
        model,
        source=f"runs:/{run.info.run_id}/onnx",
        run_id=run.info.run_id,
        tags={
            "modelcycle.window_start": "2026-01-01",
            "modelcycle.window_end": "2026-01-07",
            "modelcycle.data_hash": data_hash,
        },
    )
    if not client.get_registered_model(model).aliases.get("champion"):
        client.set_registered_model_alias(model, "champion", version.version)
    return str(version.version)


def test_an_approver_lists_compares_approves_and_an_admin_rolls_back(
    env: dict[str, str], tmp_path: Path, client: MlflowClient, model_name: str
) -> None:
    for name, role in (("otto", "operator"), ("alice", "approver"), ("root", "admin")):
        _ok("users", "add", name, "--role", role, env=env)
    register_trained(client, model_name, 0.80, "a" * 64)
    register_trained(client, model_name, 0.85, "b" * 64)
    register_trained(client, model_name, 0.60, "c" * 64)
    store = open_store(Settings(home=tmp_path))
    try:
        releases = releases_for(store, client)
        passed = releases.open(
            model=model_name, version="2", requested_by=SYSTEM, gates=GATES_PASSED
        )
        failed = releases.open(
            model=model_name, version="3", requested_by=SYSTEM, gates=GATES_FAILED
        )
    finally:
        store.close()
    listed = json.loads(_ok("release", "list", model_name, "--json", env=env).stdout)
    assert [(r["version"], r["state"]) for r in listed] == [("3", "pending"), ("2", "superseded")]

    # version 3 superseded version 2's request; 3 failed a gate
    compared = _ok("release", "compare", model_name, "1", "3", env=env).stdout
    assert all(len(line) <= 80 for line in compared.splitlines()), compared
    assert "-0.2" in compared  # the f1 delta
    assert "aaaaaaaaaaaa…" in compared and "FAILED" in compared
    as_json = json.loads(_ok("release", "compare", model_name, "1", "3", "--json", env=env).stdout)
    (f1,) = [row for row in as_json["metrics"] if row["name"] == "f1"]
    assert f1["delta"] == pytest.approx(-0.2)

    _refused(
        invoke_cli("release", "approve", str(failed.id), "--as", "otto", env=env),
        9,
        "approver role",
    )
    _refused(
        invoke_cli("release", "approve", str(failed.id), "--as", "alice", env=env),
        9,
        "failed gate(s) metric",
        "--override",
    )
    _refused(
        invoke_cli("release", "approve", str(passed.id), "--as", "alice", env=env), 10, "superseded"
    )
    _refused(
        invoke_cli("release", "approve", "999", "--as", "alice", env=env),
        3,
        "no release request 999",
    )
    _refused(
        invoke_cli("release", "reject", str(failed.id), "--as", "alice", "-m", "x" * 2001, env=env),
        2,
        "at most 2000",
    )
    _refused(
        invoke_cli("release", "approve", str(failed.id), "--as", "nobody", env=env),
        2,
        "no user named 'nobody'",
    )
    _refused(invoke_cli("release", "approve", str(failed.id), env=env), 2, "who is acting")

    approved = _ok(
        "release",
        "approve",
        str(failed.id),
        "--as",
        "root",
        "-m",
        "known dip",
        "--override",
        "the metric gate uses a bad day",
        env=env,
    )
    assert approved.stdout.strip() == (
        f"approved release {failed.id} ({model_name} version 3) as root: champion 1 → 3"
    )
    assert aliases(client, model_name) == {"champion": "3", "previous": "1"}
    _refused(invoke_cli("release", "rollback", model_name, "--as", "alice", env=env), 9, "admin")
    rolled = _ok("release", "rollback", model_name, "--as", "root", "-m", "alerts", env=env)
    assert "champion 3 → 1" in rolled.stdout
    assert aliases(client, model_name) == {"champion": "1"}

    trail = json.loads(_ok("release", "history", model_name, "--json", env=env).stdout)
    assert [(d["version"], d["action"], d["actor"]) for d in trail] == [
        ("2", "open", "system"),
        ("3", "open", "system"),
        ("2", "supersede", "system"),
        ("3", "approve", "root"),
        ("3", "rollback", "root"),
    ]
    assert trail[3]["override_reason"] == "the metric gate uses a bad day"
    shown = _ok("release", "show", str(failed.id), env=env).stdout
    assert "rolled_back" in shown and "FAILED" in shown
    table = _ok("release", "history", model_name, env=env).stdout
    assert "3 → 1" in table and "(override:" in table
    assert all(len(line) <= 80 for line in table.splitlines())


def _evaluated(store_path: Path, model: str, day: date, version: str, role: str, f1: float) -> None:
    metrics = {"accuracy": 0.99, "precision": 0.5, "recall": 0.5, "f1": f1, "roc_auc": 0.9}
    metrics |= {"pr_auc": f1 - 0.05, **confusion_counts(4, 4, 4, 988)}
    store = open_store(Settings(home=store_path))
    try:
        with store.session() as session:
            replace_evaluation(
                session,
                model=model,
                version=version,
                role=role,
                source="batch",
                day=day,
                result=DayMetrics(n_rows=1000, n_positive=8, metrics=metrics),
                labels_known_at=datetime(2026, 1, 10, tzinfo=UTC),
            )
    finally:
        store.close()


def test_compare_shows_confusion_matrices_and_the_evaluations_of_the_same_days(
    env: dict[str, str], tmp_path: Path, client: MlflowClient, model_name: str
) -> None:
    """Both at accuracy 0.99: the confusion matrix and F1 show that v2 misses every fault."""
    register_trained(client, model_name, 0.80, "a" * 64, confusion=(40, 5, 10, 945))
    register_trained(client, model_name, 0.10, "b" * 64, confusion=(0, 0, 50, 950))
    _evaluated(tmp_path, model_name, date(2026, 1, 8), "1", "champion", 0.7)
    _evaluated(tmp_path, model_name, date(2026, 1, 9), "1", "champion", 0.75)
    _evaluated(tmp_path, model_name, date(2026, 1, 9), "2", "challenger", 0.2)

    as_json = json.loads(_ok("release", "compare", model_name, "1", "2", "--json", env=env).stdout)
    assert [row["name"] for row in as_json["metrics"]][:3] == ["accuracy", "f1", "pr_auc"]
    assert as_json["confusion"]["a"] == {
        "threshold": 0.5,
        "true_positives": 40,
        "false_positives": 5,
        "false_negatives": 10,
        "true_negatives": 945,
    }
    assert as_json["confusion"]["b"]["true_positives"] == 0
    # only 2026-01-09 has both versions evaluated
    (day,) = as_json["history"]
    assert day["date"] == "2026-01-09"
    assert (day["a"]["role"], day["a"]["f1"]) == ("champion", 0.75)
    assert (day["b"]["role"], day["b"]["f1"]) == ("challenger", 0.2)
    assert day["b"]["confusion"]["false_negatives"] == 4

    compared = _ok("release", "compare", model_name, "1", "2", env=env).stdout
    assert all(len(line) <= 80 for line in compared.splitlines()), compared
    assert "confusion matrix" in compared and "false_negatives" in compared
    assert "2026-01-09" in compared and "0.99 / 0.2 / 0.15 (challenger)" in compared


def _shadowed(
    lake: Path, model: str, champion: str, challenger: str, pairs: list[tuple[float, float]]
) -> None:
    """What the API's shadow scoring writes: (champion score, challenger score) per row."""
    shadow_log = PredictionLog(open_object_store(str(lake)), table=SHADOW_TABLE)
    for request, (champion_score, challenger_score) in enumerate(pairs):
        shadow_log.record(
            PredictionBatch(
                predicted_at=datetime(2026, 1, 9, 12, request, tzinfo=UTC),
                request_id=f"r{request}",
                model=model,
                version=challenger,
                scores=[challenger_score],
                champion_version=champion,
                champion_scores=[champion_score],
            )
        )
    shadow_log.flush()


def test_compare_shows_live_traffic_when_one_version_shadowed_the_other(
    env: dict[str, str], tmp_path: Path, client: MlflowClient, model_name: str
) -> None:
    """Four rows scored by v1 (champion) and v2 (in the shadow): they decide alike on three."""
    register_trained(client, model_name, 0.80, "a" * 64)
    register_trained(client, model_name, 0.85, "b" * 64)
    register_trained(client, model_name, 0.70, "c" * 64)
    before = json.loads(_ok("release", "compare", model_name, "1", "2", "--json", env=env).stdout)
    assert before["live"] is None
    pairs = [(0.9, 0.8), (0.1, 0.2), (0.6, 0.4), (0.3, 0.3)]
    _shadowed(tmp_path / "lake", model_name, "1", "2", pairs)
    _shadowed(tmp_path / "lake", model_name, "1", "3", [(0.9, 0.0)])  # another challenger

    as_json = json.loads(_ok("release", "compare", model_name, "1", "2", "--json", env=env).stdout)
    live = as_json["live"]
    assert (live["rows"], live["requests"]) == (4, 4)
    assert live["agreement"] == pytest.approx(0.75)
    assert live["mean_abs_difference"] == pytest.approx((0.1 + 0.1 + 0.2 + 0.0) / 4, abs=1e-6)
    assert live["flagged"] == {"a": 2, "b": 1}
    swapped = json.loads(_ok("release", "compare", model_name, "2", "1", "--json", env=env).stdout)
    assert swapped["live"]["flagged"] == {"a": 1, "b": 2}

    compared = _ok("release", "compare", model_name, "1", "2", env=env).stdout
    assert all(len(line) <= 80 for line in compared.splitlines()), compared
    assert "live traffic" in compared and "75.00%" in compared and "4 in 4 requests" in compared
