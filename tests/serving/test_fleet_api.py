"""`/v1/fleet/devices` on a real uvicorn over a real populated lake: each customer user sees their
own devices only; another customer's device is 404 by URL, by search and by filter.

The lake is a simulated fleet, ingested, its features built, and scored for the last day by both
models fitted on the first days (the same models and the same score writer as `modelcycle
score`; no MLflow needed for a read-only view). Alerts come from `modelcycle alerts check`.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import requests

from modelcycle.features.store import load_features
from modelcycle.features.windows import WINDOW_START
from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.monitoring.scoring import SCORES_SCHEMA, feature_matrix, write_scores
from modelcycle.simulate import FleetSpec, simulate_fleet
from modelcycle.storage import open_store
from modelcycle.training.dataset import build_training_set
from modelcycle.training.models import AnomalyDetector, FaultClassifier, WindowModel
from tests.support.api import ApiServer, start_api
from tests.support.cli import invoke_cli
from tests.support.servers import LOOPBACK, free_port

pytestmark = pytest.mark.slow

START = date(2026, 1, 1)
DAYS = 4
CLASSIFIER, DETECTOR = "sensor-fault-classifier", "sensor-anomaly-detector"


@dataclass(frozen=True)
class FleetApi:
    api: ApiServer
    keys: dict[str, str]  # user -> API key
    owners: dict[str, str]  # device -> customer


def scored_fleet(home: Path) -> Path:
    """Three customers' fleet simulated, scored into the lake; the device-anomaly rules file."""
    simulate_fleet(
        FleetSpec(devices=40, sensors=8, days=DAYS, start=START, seed=9, customers=3),
        home / "raw",
    )
    _score(home / "lake", home / "raw")
    rules = home / "rules.yaml"
    rules.write_text(f"rules:\n  devices:\n    type: device_anomaly\n    model: {DETECTOR}\n")
    return rules


def _score(lake_root: Path, raw_root: Path) -> None:
    raw, lake = open_store(str(raw_root)), open_store(str(lake_root))
    days = [START + timedelta(days=n) for n in range(DAYS)]
    for day in days:
        ingest_day(day, raw=raw, lake=lake, options=IngestOptions())
    data = build_training_set(lake=lake, raw=raw, end=days[-2], window_days=DAYS - 1)
    models: list[tuple[str, WindowModel]] = [
        (DETECTOR, AnomalyDetector()),
        (CLASSIFIER, FaultClassifier()),
    ]
    features = load_features(lake, days[-1:], data.spec)
    for name, model in models:
        model.fit(data.x_train, data.y_train)
        scores = model.native_scores(feature_matrix(features, data.spec.feature_names))
        n = len(scores)
        table = pa.table(
            {
                "device_id": features.column("device_id"),
                WINDOW_START: features.column(WINDOW_START).cast(pa.timestamp("us")),
                "model": pa.array([name] * n),
                "version": pa.array(["1"] * n),
                "score": pa.array(scores.astype(np.float32)),
                "flagged": pa.array(scores >= model.decision_threshold),
            },
            schema=SCORES_SCHEMA,
        )
        write_scores(lake, days[-1], table)


def _ok(*args: str, env: dict[str, str]) -> str:
    result = invoke_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def fleet_api(tmp_path_factory: pytest.TempPathFactory, server_log_dir: Path) -> Iterator[FleetApi]:
    home = tmp_path_factory.mktemp("fleet-api")
    rules = scored_fleet(home)
    env = {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_DATABASE_URL": f"sqlite:///{home / 'store.db'}",
        "MODELCYCLE_TRACKING_URI": f"http://{LOOPBACK}:{free_port()}",
        "MODELCYCLE_ALERT_RULES": str(rules),
        "MODELCYCLE_SERVING_KEY_REFRESH_SECONDS": "0.2",
    }
    _ok("db", "upgrade", env=env)
    invoke_cli("alerts", "check", "--date", str(START + timedelta(days=DAYS - 1)), env=env)
    keys = {}
    for user, extra in (
        ("alice", ["--customer", "cust-00"]),
        ("bob", ["--customer", "cust-01"]),
        ("carol", []),
    ):
        _ok("users", "add", user, "--role", "viewer", *extra, env=env)
        keys[user] = _ok("users", "key", "create", user, "--label", "test", env=env)
    with (home / "raw" / "devices.csv").open() as register:
        owners = {row["device_id"]: row["customer_id"] for row in csv.DictReader(register)}
    with start_api(env, server_log_dir) as api:
        fleet = FleetApi(api=api, keys=keys, owners=owners)
        _wait_for_keys(fleet)
        yield fleet


def _wait_for_keys(fleet: FleetApi) -> None:
    """The API reads users' keys after it starts: wait for that, not for the fleet view."""
    deadline = time.monotonic() + 120
    while _get(fleet, "alice", "/v1/whoami").status_code != 200:
        assert time.monotonic() < deadline, f"the API never read users' keys; {fleet.api.log_path}"
        time.sleep(0.1)


def _get(fleet: FleetApi, user: str, path: str, **params: str | int) -> requests.Response:
    return requests.get(
        f"{fleet.api.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {fleet.keys[user]}"},
        timeout=60,
    )


def _owned(fleet: FleetApi, customer: str) -> list[str]:
    return sorted(d for d, c in fleet.owners.items() if c == customer)


def test_a_customer_user_lists_exactly_their_own_devices_with_a_status(fleet_api: FleetApi) -> None:
    answer = _get(fleet_api, "alice", "/v1/fleet/devices", page_size=200)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    listed = [d["device_id"] for d in body["devices"]]
    assert listed == _owned(fleet_api, "cust-00") and body["total"] == len(listed)
    assert {d["status"] for d in body["devices"]} <= {"healthy", "anomalous", "predicted_faulty"}
    assert sum(body["counts"].values()) == len(listed)
    assert body["scored_day"] == str(START + timedelta(days=DAYS - 1))


def test_another_customers_device_is_not_found_by_url_search_or_filter(fleet_api: FleetApi) -> None:
    theirs = _owned(fleet_api, "cust-01")[0]
    by_url = _get(fleet_api, "alice", f"/v1/fleet/devices/{theirs}")
    unknown = _get(fleet_api, "alice", "/v1/fleet/devices/device-9999")
    assert by_url.status_code == unknown.status_code == 404
    assert by_url.json()["detail"] == f"no device {theirs!r}"
    by_search = _get(fleet_api, "alice", "/v1/fleet/devices", q=theirs).json()
    assert by_search["total"] == 0 and by_search["devices"] == []
    by_filter = _get(fleet_api, "alice", "/v1/fleet/devices", customer="cust-01")
    assert by_filter.status_code == 404
    for status in ("healthy", "anomalous", "predicted_faulty"):
        shown = _get(fleet_api, "alice", "/v1/fleet/devices", status=status).json()["devices"]
        assert all(fleet_api.owners[d["device_id"]] == "cust-00" for d in shown)
    own = _get(fleet_api, "bob", f"/v1/fleet/devices/{theirs}")
    assert own.status_code == 200 and own.json()["device"]["device_id"] == theirs


def test_a_team_user_names_the_customer(fleet_api: FleetApi) -> None:
    missing = _get(fleet_api, "carol", "/v1/fleet/devices")
    assert missing.status_code == 422
    assert missing.json()["detail"] == "customer: required for a user not bound to a customer"
    chosen = _get(fleet_api, "carol", "/v1/fleet/devices", customer="cust-01", page_size=200)
    assert [d["device_id"] for d in chosen.json()["devices"]] == _owned(fleet_api, "cust-01")


def test_sorting_searching_and_paging_the_device_list(fleet_api: FleetApi) -> None:
    everything = _get(fleet_api, "alice", "/v1/fleet/devices", sort="-anomaly_score", page_size=200)
    scores = [d["anomaly_score"] for d in everything.json()["devices"]]
    assert scores == sorted(scores, reverse=True)
    first = _get(fleet_api, "alice", "/v1/fleet/devices", page=1, page_size=2).json()
    second = _get(fleet_api, "alice", "/v1/fleet/devices", page=2, page_size=2).json()
    mine = _owned(fleet_api, "cust-00")
    assert [d["device_id"] for d in first["devices"] + second["devices"]] == mine[:4]
    found = _get(fleet_api, "alice", "/v1/fleet/devices", q=mine[0][-4:]).json()
    assert [d["device_id"] for d in found["devices"]] == [mine[0]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sort": "price"}, "sort: 'price' is not one of"),
        ({"page": 0}, "page"),
        ({"status": "sleepy"}, "status"),
        ({"page_size": 5000}, "page_size"),
    ],
)
def test_bad_query_parameters_are_refused_in_one_line(
    fleet_api: FleetApi, params: dict[str, str | int], named: str
) -> None:
    answer = _get(fleet_api, "alice", "/v1/fleet/devices", **params)
    assert answer.status_code == 422
    body = answer.json()
    line = body.get("message") or body["detail"]
    assert isinstance(line, str) and "\n" not in line and named in line


def test_a_device_page_has_downsampled_sensors_scores_thresholds_and_contributors(
    fleet_api: FleetApi,
) -> None:
    device = _owned(fleet_api, "cust-00")[0]
    answer = _get(fleet_api, "alice", f"/v1/fleet/devices/{device}", days=3)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["thresholds"] == {"anomaly_score": 0.0, "fault_probability": 0.5}
    assert body["series"] and all(len(points) <= 3 * 24 for points in body["series"].values())
    assert set(body["series"]) <= set(body["sensors"]) and len(body["sensors"]) == 8
    assert len(body["scores"]) == 24  # the scored day's windows
    assert all("anomaly_score" in s and "fault_probability" in s for s in body["scores"])
    z = [c["z"] for c in body["contributors"]]
    assert z == sorted(z, reverse=True) and len(z) == 5
    picked = _get(fleet_api, "alice", f"/v1/fleet/devices/{device}", sensors="s001,s002")
    assert set(picked.json()["series"]) == {"s001", "s002"}
    unknown = _get(fleet_api, "alice", f"/v1/fleet/devices/{device}", sensors="s999")
    assert unknown.status_code == 422 and "s999" in unknown.json()["detail"]
