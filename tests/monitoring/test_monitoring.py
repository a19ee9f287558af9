"""Score, evaluate, drift and report on a monitored fleet, through the CLI a user runs."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from modelcycle.serving.prediction_log import PredictionBatch, PredictionLog
from modelcycle.storage import open_store as open_object_store
from tests.support.cli import invoke_cli
from tests.support.monitored import MonitoredFleet, day

pytestmark = pytest.mark.slow


def _cli_json(env: dict[str, str], *args: str) -> object:
    result = invoke_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def test_score_writes_versioned_scores_to_the_lake_and_drift_to_the_store(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    scored = _cli_json(fleet_env, "score", "--date", str(day(6)))
    assert isinstance(scored, list)
    assert {r["model"] for r in scored} == {monitored_fleet.classifier, monitored_fleet.detector}
    for row in scored:
        table = pq.read_table(
            monitored_fleet.home / "lake" / "scores" / f"date={day(6)}" / f"{row['model']}.parquet"
        )
        assert table.num_rows == row["windows"] == 40 * 24
        assert set(table.column("version").to_pylist()) == {"1"}
        assert table.column("device_id").null_count == 0
    drift = _rows(
        tmp_path / "monitoring.db",
        "SELECT model, n_features, n_drifted FROM drift_summaries ORDER BY model",
    )
    assert len(drift) == 2
    assert all(n_features == 51 for _, n_features, _ in drift)  # n_readings + 10 sensors × 5
    per_feature = _rows(tmp_path / "monitoring.db", "SELECT count(*) FROM drift_results")
    assert per_feature == [(2 * 51,)]


def test_drift_grows_after_the_fleet_starts_to_age(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    early = _cli_json(fleet_env, "score", "--date", str(day(3)))
    late = _cli_json(fleet_env, "score", "--date", str(day(7)))
    assert isinstance(early, list) and isinstance(late, list)
    assert late[0]["drift_share"] > early[0]["drift_share"]


def test_evaluate_records_metrics_once_per_day_even_when_rerun(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    first = _cli_json(fleet_env, "evaluate", "--date", str(day(4)))
    again = _cli_json(fleet_env, "evaluate", "--date", str(day(4)))
    assert first == again
    assert isinstance(first, list)
    for row in first:
        assert row["role"] == "champion" and row["n"] == 40 * 24
        assert 0 < row["metrics"]["accuracy"] <= 1
    rows = _rows(tmp_path / "monitoring.db", "SELECT model, day, role FROM evaluations")
    assert len(rows) == 2


def test_a_day_without_labels_is_refused_and_nothing_is_recorded(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    ledger = monitored_fleet.home / "raw" / "maintenance.csv"
    kept_until = max(line.split(",")[2] for line in ledger.read_text().splitlines()[1:])
    unlabelled = kept_until[:10]  # the ledger ends during this day: its labels are not all in
    assert unlabelled == str(day(7))
    result = invoke_cli("evaluate", "--date", str(unlabelled), env=fleet_env)
    assert result.returncode == 3
    assert f"no labels for {unlabelled} yet" in result.stderr
    assert f"kept until {kept_until[:16]}" in result.stderr
    assert "Traceback" not in result.stderr
    assert _rows(tmp_path / "monitoring.db", "SELECT count(*) FROM evaluations") == [(0,)]


def test_report_shows_accuracy_per_day_with_the_7_day_average_and_a_chart(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    for n in (4, 5, 6):
        _cli_json(fleet_env, "evaluate", "--date", str(day(n)))
    chart = tmp_path / "accuracy.png"
    report = _cli_json(
        fleet_env, "monitor", "report", "--model", monitored_fleet.classifier, "--plot", str(chart)
    )
    assert isinstance(report, dict)
    classifier = report[monitored_fleet.classifier]
    assert [d["date"] for d in classifier["daily"]] == [str(day(n)) for n in (4, 5, 6)]
    assert all(d["version"] == "1" and d["n"] == 960 for d in classifier["daily"])
    mean = sum(d["accuracy"] for d in classifier["daily"]) / 3
    assert classifier["accuracy_7d_avg"] == pytest.approx(mean)
    # accuracy is not the only number: F1, PR-AUC and the confusion matrix per day
    for evaluated in classifier["daily"]:
        confusion = evaluated["confusion"]
        assert sum(confusion.values()) == evaluated["n"]
        assert evaluated["f1"] is not None
    assert classifier["f1_7d_avg"] == pytest.approx(sum(d["f1"] for d in classifier["daily"]) / 3)
    # the serving champion's age beside the newest version's
    assert classifier["champion_version"] == "1"
    assert classifier["model_age_hours"] is not None and classifier["stale"] is False
    assert classifier["newest_version"] is not None
    assert classifier["newest_age_hours"] is not None
    text = invoke_cli("monitor", "report", "--model", monitored_fleet.classifier, env=fleet_env)
    assert "champion v1 trained" in text.stdout and "; newest v" in text.stdout
    assert "PR-AUC" in text.stdout and "TP/FP/FN/TN" in text.stdout
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    page = tmp_path / "accuracy.html"
    result = invoke_cli("monitor", "report", "--plot", str(page), env=fleet_env)
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<img")[1]


def test_report_refuses_a_chart_it_cannot_write(fleet_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke_cli("monitor", "report", "--plot", str(tmp_path / "chart.svg"), env=fleet_env)
    assert result.returncode == 2
    assert "give a .png or .html file" in result.stderr


def test_online_predictions_logged_by_the_api_are_evaluated_with_the_same_labels(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    """Every window of day 5 answered by the API with the champion's own scores: online metrics
    must equal the batch metrics, computed from the API's prediction log in the lake."""
    _cli_json(fleet_env, "score", "--date", str(day(5)))
    scores = pq.read_table(
        monitored_fleet.home
        / "lake"
        / "scores"
        / f"date={day(5)}"
        / f"{monitored_fleet.classifier}.parquet"
    )
    lake = open_object_store(str(monitored_fleet.home / "lake"))
    prediction_log = PredictionLog(lake)
    answered_at = datetime.combine(day(5), time(23, 30), tzinfo=UTC)
    for device in sorted(set(scores.column("device_id").to_pylist())):
        rows = scores.filter(pc.equal(scores.column("device_id"), device))
        prediction_log.record(
            PredictionBatch(
                predicted_at=answered_at,
                request_id=f"req-{device}",
                model=monitored_fleet.classifier,
                version="1",
                scores=rows.column("score").to_pylist(),
                device_id=device,
                windows=rows.column("window_start").to_pylist(),
            )
        )
    prediction_log.flush()

    evaluated = _cli_json(fleet_env, "evaluate", "--date", str(day(5)))
    assert isinstance(evaluated, list)
    by_role = {(r["model"], r["role"]): r for r in evaluated}
    online = by_role[(monitored_fleet.classifier, "online")]
    batch = by_role[(monitored_fleet.classifier, "champion")]
    assert online["n"] == batch["n"] == 960
    assert online["metrics"]["accuracy"] == pytest.approx(batch["metrics"]["accuracy"])
    assert online["positives"] == batch["positives"]
    sources = _rows(
        tmp_path / "monitoring.db",
        f"SELECT source FROM evaluations WHERE model = '{monitored_fleet.classifier}' ORDER BY 1",
    )
    assert sources == [("batch",), ("online",)]


def test_monitor_daily_scores_evaluates_and_checks_alerts_in_one_command(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    # a threshold every score passes: each device of the day's scores must raise its alert
    rules.write_text(
        "rules:\n  devices:\n    type: device_anomaly\n"
        f"    model: {monitored_fleet.detector}\n    threshold: -1000\n    consecutive: 3\n"
    )
    env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules)}
    summary = _cli_json(
        env, "monitor", "daily", "--date", str(day(7)), "--evaluate-date", str(day(6))
    )
    assert isinstance(summary, dict)
    assert {s["model"] for s in summary["scored"]} == {
        monitored_fleet.classifier,
        monitored_fleet.detector,
    }
    assert {(e["model"], e["role"]) for e in summary["evaluated"]} == {
        (monitored_fleet.classifier, "champion"),
        (monitored_fleet.detector, "champion"),
    }
    assert summary["evaluation_skipped"] is None and summary["rule_errors"] == {}
    assert len(summary["firing"]) == 40  # one alert per device of day 7's scores
    assert all(key.startswith("device_anomaly:device-") for key in summary["firing"])

    unlabelled = _cli_json(env, "monitor", "daily", "--date", str(day(7)))
    assert isinstance(unlabelled, dict)
    assert unlabelled["evaluation_skipped"].startswith(f"no labels for {day(7)} yet")
    assert unlabelled["events"] == []  # the same state: nothing fired twice
