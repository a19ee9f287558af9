"""Alert scenarios on the monitored fleet: real MLflow, real HTTP and SMTP receivers, the CLI.

The CLI runs in the test's process (`invoke_cli`), except the stale scenario's second check: a
new process, so "a restart neither loses nor repeats alerts" is shown across a real restart.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelcycle.alerting.channels import verify_signature
from modelcycle.alerting.engine import CheckResult, check, decide
from modelcycle.alerting.facts import build_facts
from modelcycle.alerting.rules_file import load_rules
from modelcycle.monitoring.daily import Monitoring, evaluate_day
from modelcycle.registry.catalog import model_ages
from modelcycle.registry.contract import TRAINED_AT_TAG
from modelcycle.settings import Settings
from modelcycle.storage import open_store as open_object_store
from modelcycle.store import open_store
from tests.support.cli import invoke_cli, run_cli
from tests.support.monitored import MonitoredFleet, day
from tests.support.receivers import HttpReceiver, SmtpReceiver, closed_port, header
from tests.support.registry import server_client
from tests.support.servers import sqlalchemy_postgres_url

pytestmark = pytest.mark.slow

SECRET = "test-hook-secret"


def _write_rules(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _champion_trained(env: dict[str, str], name: str) -> datetime:
    """When the serving champion was trained: the age every stale alert measures."""
    champion = model_ages(server_client(env["MODELCYCLE_TRACKING_URI"]), [name])[name].champion
    assert champion is not None
    return champion[1]


def _register_copy_of_v1(env: dict[str, str], name: str, trained_at: datetime) -> str:
    """A new version of `name` (v1's model again) that says it was trained at `trained_at`."""
    client = server_client(env["MODELCYCLE_TRACKING_URI"])
    v1 = client.get_model_version(name, "1")
    assert v1.source
    # MLflow 3: the source is the logged model (`models:/<model_id>`), named again as model_id
    model_id = v1.source.removeprefix("models:/") if v1.source.startswith("models:/") else None
    fresh = client.create_model_version(
        name,
        v1.source,
        run_id=v1.run_id,
        model_id=model_id,
        tags={**v1.tags, TRAINED_AT_TAG: trained_at.isoformat()},
    )
    return str(fresh.version)


def _check(
    env: dict[str, str], at: datetime, *extra: str, new_process: bool = False
) -> dict[str, Any]:
    cli = run_cli if new_process else invoke_cli
    result = cli("alerts", "check", "--json", "--at", at.isoformat(), *extra, env=env)
    assert "Traceback" not in result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    data["exit_code"] = result.returncode
    return data


def _bodies(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [orjson.loads(r.body) for r in receiver.requests]


def _stale_rules(tmp_path: Path, fleet: MonitoredFleet, url: str) -> Path:
    return _write_rules(
        tmp_path / "rules.yaml",
        f"""\
        renotify_minutes: 120
        retry_backoff_seconds: 0.1
        channels:
          ops:
            type: webhook
            url: {url}
            secret_env: TEST_HOOK_SECRET
        rules:
          stale:
            type: model_stale
            max_age_hours: 36
            models: [{fleet.classifier}]
        """,
    )


def _stale_scenario(fleet: MonitoredFleet, env: dict[str, str], receiver: HttpReceiver) -> None:
    """37 h after the champion was trained, with a challenger trained 0.1 h before: fires once
    (the champion's age counts, not the newest version's), reminds later, resolves once the fresh
    version becomes champion."""
    trained = _champion_trained(env, fleet.classifier)
    fresh = _register_copy_of_v1(env, fleet.classifier, trained + timedelta(hours=36.9))
    first = _check(env, trained + timedelta(hours=37))
    assert first["exit_code"] == 0
    assert first["events"] == [{"event": "firing", "key": f"model_stale:{fleet.classifier}"}]
    assert [b["event"] for b in _bodies(receiver)] == ["firing"]

    request = receiver.requests[0]
    timestamp = header(request, "X-Modelcycle-Timestamp")
    signature = header(request, "X-Modelcycle-Signature")
    assert timestamp and signature
    assert verify_signature(
        SECRET.encode(), timestamp, request.body, signature, tolerance_seconds=None
    )
    summary = _bodies(receiver)[0]["summary"]
    assert "champion v1 was trained 37 h ago" in summary
    assert f"newest v{fresh} 0.1 h ago" in summary

    again = _check(env, trained + timedelta(hours=38), new_process=True)  # nothing repeated
    assert again["events"] == [] and again["firing"] == [f"model_stale:{fleet.classifier}"]
    assert len(receiver.requests) == 1

    later = _check(env, trained + timedelta(hours=39, minutes=1))
    assert [e["event"] for e in later["events"]] == ["reminder"]
    assert [b["event"] for b in _bodies(receiver)] == ["firing", "reminder"]

    client = server_client(env["MODELCYCLE_TRACKING_URI"])
    client.set_registered_model_alias(fleet.classifier, "champion", fresh)
    try:
        resolved = _check(env, trained + timedelta(hours=40))
    finally:  # the fleet is shared: v1 serves again for the other tests
        client.set_registered_model_alias(fleet.classifier, "champion", "1")
    assert resolved["events"] == [{"event": "resolved", "key": f"model_stale:{fleet.classifier}"}]
    assert resolved["firing"] == []
    assert [b["event"] for b in _bodies(receiver)] == ["firing", "reminder", "resolved"]

    listed = invoke_cli("alerts", "list", "--state", "resolved", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [a["key"] for a in json.loads(listed.stdout)] == [f"model_stale:{fleet.classifier}"]


def test_a_stale_model_fires_once_reminds_and_resolves_after_a_new_version(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    with HttpReceiver() as receiver:
        rules = _stale_rules(tmp_path, monitored_fleet, receiver.url)
        env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules), "TEST_HOOK_SECRET": SECRET}
        _stale_scenario(monitored_fleet, env, receiver)


@pytest.mark.postgres
def test_alert_state_lives_in_postgresql_after_db_upgrade(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path, postgres_url: str
) -> None:
    database = sqlalchemy_postgres_url(postgres_url)
    with HttpReceiver() as receiver:
        rules = _stale_rules(tmp_path, monitored_fleet, receiver.url)
        env = {
            **fleet_env,
            "MODELCYCLE_DATABASE_URL": database,
            "MODELCYCLE_ALERT_RULES": str(rules),
            "TEST_HOOK_SECRET": SECRET,
        }
        refused = invoke_cli("alerts", "check", env=env)
        assert refused.returncode == 7
        assert "run `modelcycle db upgrade`" in refused.stderr
        assert receiver.requests == []
        upgraded = invoke_cli("db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        _stale_scenario(monitored_fleet, env, receiver)


def _customers(fleet: MonitoredFleet) -> dict[str, str]:
    with (fleet.home / "raw" / "devices.csv").open() as handle:
        return {row["device_id"]: row["customer_id"] for row in csv.DictReader(handle)}


def _faulty_devices(fleet: MonitoredFleet, scored_day: str) -> set[str]:
    with (fleet.home / "raw" / "maintenance.csv").open() as handle:
        return {
            row["device_id"]
            for row in csv.DictReader(handle)
            if row["fault_start"] < f"{scored_day} 24" and row["confirmed_at"] >= scored_day
        }


def test_device_anomalies_reach_only_their_own_customer(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    scored_day = str(day(6))
    scored = invoke_cli("score", "--date", scored_day, env=fleet_env)
    assert scored.returncode == 0, scored.stderr
    customers = _customers(monitored_fleet)
    first, second = sorted(set(customers.values()))[:2]
    with HttpReceiver() as ops, HttpReceiver() as second_hook, SmtpReceiver() as smtp:
        rules = _write_rules(
            tmp_path / "rules.yaml",
            f"""\
            channels:
              ops: {{type: webhook, url: {ops.url}}}
              first-customer:
                type: email
                host: 127.0.0.1
                port: {smtp.port}
                starttls: false
                sender: modelcycle@example.eu
                to: [maintenance@first.example]
                customer: {first}
              second-customer: {{type: webhook, url: {second_hook.url}, customer: {second}}}
            rules:
              devices:
                type: device_anomaly
                model: {monitored_fleet.detector}
                threshold: 0.0
                consecutive: 2
            """,
        )
        env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules)}
        result = _check(env, datetime.now(UTC))
        assert result["exit_code"] == 0, result
        fired = {k.split(":", 1)[1] for k in result["firing"]}
        assert fired, "the detector should flag some device on a day with developing faults"
        assert fired & _faulty_devices(monitored_fleet, scored_day), (
            "a device with an injected fault should be among those alerted"
        )

        ops_devices = {b["details"]["device_id"] for b in _bodies(ops)}
        assert ops_devices == fired  # the operations channel sees every device alert
        second_devices = {b["details"]["device_id"] for b in _bodies(second_hook)}
        assert second_devices == {d for d in fired if customers[d] == second}
        assert all(b["customer_id"] == second for b in _bodies(second_hook))
        mails = smtp.mails
        assert {m.message["Subject"].split("device ")[1].split(":")[0] for m in mails} == {
            d for d in fired if customers[d] == first
        }
        assert all(m.rcpt_tos == ["maintenance@first.example"] for m in mails)


def test_a_dead_channel_is_retried_recorded_and_does_not_stop_the_others(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    with HttpReceiver() as live, SmtpReceiver() as smtp:
        rules = _write_rules(
            tmp_path / "rules.yaml",
            f"""\
            retry_attempts: 3
            retry_backoff_seconds: 0.05
            channels:
              dead: {{type: webhook, url: "http://127.0.0.1:{closed_port()}/hook"}}
              live: {{type: webhook, url: {live.url}}}
              mail:
                type: email
                host: 127.0.0.1
                port: {smtp.port}
                starttls: false
                sender: modelcycle@example.eu
                to: [oncall@example.eu]
            rules:
              stale: {{type: model_stale, max_age_hours: 1, models: [{monitored_fleet.classifier}]}}
            """,
        )
        env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules)}
        at = _champion_trained(env, monitored_fleet.classifier) + timedelta(hours=2)
        result = _check(env, at)
        assert result["exit_code"] == 1  # a scheduler sees that a channel failed
        outcomes = {d["channel"]: d for d in result["deliveries"]}
        assert outcomes["dead"]["ok"] is False and outcomes["dead"]["attempts"] == 3
        assert outcomes["live"]["ok"] and outcomes["mail"]["ok"]
        assert len(live.requests) == 1 and len(smtp.mails) == 1
        rows = (
            sqlite3.connect(tmp_path / "monitoring.db")
            .execute(
                "SELECT channel, status, attempts, last_error FROM deliveries ORDER BY channel"
            )
            .fetchall()
        )
        assert [(c, s, a) for c, s, a, _ in rows] == [
            ("dead", "failed", 3),
            ("live", "sent", 1),
            ("mail", "sent", 1),
        ]
        assert rows[0][3]  # the reason is recorded


def test_deliveries_decided_before_a_crash_are_sent_once_by_the_next_check(
    monitored_fleet: MonitoredFleet,
    fleet_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with HttpReceiver() as receiver:
        rules = _stale_rules(tmp_path, monitored_fleet, receiver.url)
        env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules), "TEST_HOOK_SECRET": SECRET}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        config = load_rules(rules)
        at = _champion_trained(env, monitored_fleet.classifier) + timedelta(hours=40)
        store = open_store(settings)
        try:
            facts = build_facts(
                settings,
                store,
                lake=open_object_store(settings.resolved_lake_url),
                raw=open_object_store(settings.resolved_raw_url),
                now=at,
            )
            decide(store, config, facts, CheckResult())  # ...and the process dies here
            assert receiver.requests == []
            result = check(store, config, facts)
        finally:
            store.close()
        assert result.events == []  # already decided: not decided twice
        assert [b["event"] for b in _bodies(receiver)] == ["firing"]


def test_accuracy_that_degrades_as_the_fleet_drifts_fires_the_accuracy_alert(
    monitored_fleet: MonitoredFleet, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    with HttpReceiver() as receiver:
        rules = _write_rules(
            tmp_path / "rules.yaml",
            f"""\
            channels:
              ops: {{type: webhook, url: {receiver.url}}}
            rules:
              accuracy:
                type: accuracy
                model: {monitored_fleet.classifier}
                threshold: 0.98
                direction: below
                window_days: 3
            """,
        )
        env = {**fleet_env, "MODELCYCLE_ALERT_RULES": str(rules)}
        settings = Settings()
        store = open_store(settings)
        try:
            monitoring = Monitoring(
                settings=settings,
                lake=open_object_store(settings.resolved_lake_url),
                raw=open_object_store(settings.resolved_raw_url),
                store=store,
            )
            for n in (1, 2, 3):  # before the fleet starts to age
                evaluate_day(monitoring, day(n))
            before = _check(env, datetime.now(UTC))
            assert before["firing"] == [] and receiver.requests == []
            for n in (4, 5, 6):  # the fleet ages from day 4: the champion drifts out of date
                evaluate_day(monitoring, day(n))
        finally:
            store.close()
        after = _check(env, datetime.now(UTC))
        key = f"accuracy:accuracy:{monitored_fleet.classifier}"
        assert after["firing"] == [key]
        (body,) = _bodies(receiver)
        assert body["details"]["days"] == [str(day(n)) for n in (4, 5, 6)]
        assert body["details"]["value"] < 0.98
        assert "3-day accuracy" in body["summary"]
