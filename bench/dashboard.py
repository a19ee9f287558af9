"""The dashboard's pages with 1000 devices and 90 days of history: p50/p95 and payload per page.

The home (bench/dashboard_home.py) holds real trained versions in a real `mlflow server` and 90
days of synthetic history in the store. A real `modelcycle serve` answers; a signed-in session
drives each page, and an API key its `/v1/` twin, with a small threaded load generator on loopback
(`--threads` clients, `--requests` each per page after a warm-up). The time is from sending the
request to the last byte of the answer: server time plus loopback. Run twice: with the registry
reads kept (the default `MODELCYCLE_DASHBOARD_CACHE_SECONDS`) and with every page reading the
registry (`0`), the state before the cache. Run with `make bench-dashboard`.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import requests
from mlflow.tracking import MlflowClient

from bench.dashboard_home import (
    DEVICES,
    FEATURE_DAYS,
    HISTORY_DAYS,
    SENSORS,
    START,
    TRAINED_DAYS,
    add_daily_versions,
    fleet_register,
    insert_history,
    train_models,
    write_fleet_lake,
)
from bench.release import mlflow_server
from bench.report import machine_line, write_section
from bench.serving_load import free_port, run_server
from bench.verdict import Conditions, Target, Verdicts, run_line
from modelcycle.access.identity import Role
from modelcycle.access.keys import create_api_key
from modelcycle.access.passwords import set_password
from modelcycle.access.users import add_user
from modelcycle.settings import Settings
from modelcycle.store import open_store

DATA = Path(__file__).resolve().parent / ".data" / "dashboard-home"
API_KEY = "bench-dashboard-key"
PERSON, PASSWORD = "alice", "bench dashboard password 42"
CUSTOMER_PERSON = "carol"  # a viewer bound to the largest customer
P95_MS, PAYLOAD_BYTES = 200.0, 1_000_000


Path_ = str | Callable[[], str]


@dataclass(frozen=True)
class PageTimes:
    setup: str
    path: str
    p50_ms: float
    p95_ms: float
    payload: int
    errors: int


@dataclass(frozen=True)
class Customer:
    customer_id: str
    devices: list[str]
    api_key: str


def _end() -> date:
    return date.fromisoformat(START) + timedelta(days=TRAINED_DAYS - 1)


def prepare_fleet(tracking_uri: str) -> Customer:
    """The customer pages' lake and the largest customer's user (password and API key)."""
    register = fleet_register()
    sizes = Counter(d["customer_id"] for d in register)
    customer = sizes.most_common(1)[0][0]
    devices = [d["device_id"] for d in register if d["customer_id"] == customer]
    key_file = DATA / "customer-key"
    if not key_file.exists():
        settings = Settings(home=DATA)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        newest = {
            name: add_daily_versions(client, name, HISTORY_DAYS)[-1]
            for name in settings.model_names
        }
        write_fleet_lake(DATA, newest, _end())
        store = open_store(settings)
        try:
            with store.session() as session:
                add_user(session=session, name=CUSTOMER_PERSON, role=Role.VIEWER,
                         customer_id=customer)  # fmt: skip
            with store.session() as session:
                set_password(session=session, name=CUSTOMER_PERSON, password=PASSWORD)
            with store.session() as session:
                key = create_api_key(session=session, user=CUSTOMER_PERSON, label="bench")
        finally:
            store.close()
        key_file.write_text(key)
    return Customer(customer, devices, key_file.read_text().strip())


def prepare_home(tracking_uri: str) -> None:
    marker = DATA / "prepared"
    if marker.exists():
        return
    trained = DATA / "trained"
    if not trained.exists():
        train_models(DATA, tracking_uri)
        trained.touch()
    settings = Settings(home=DATA)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions = {
        name: add_daily_versions(client, name, HISTORY_DAYS) for name in settings.model_names
    }
    store = open_store(settings)
    try:
        insert_history(store, versions, _end())
        with store.session() as session:
            add_user(session=session, name=PERSON, role=Role.APPROVER, customer_id=None)
        with store.session() as session:
            set_password(session=session, name=PERSON, password=PASSWORD)
    finally:
        store.close()
    marker.touch()


def signed_in(url: str, person: str = PERSON, home: str = "/dashboard") -> requests.Session:
    session = requests.Session()
    found = re.search(r'name="csrf_token" value="([^"]+)"', session.get(f"{url}/signin").text)
    if found is None:
        raise SystemExit("the sign-in page has no CSRF field")
    form = {"username": person, "password": PASSWORD, "csrf_token": found.group(1)}
    answer = session.post(f"{url}/signin", data=form, timeout=30)
    if not answer.url.endswith(home):
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    return session


def drive(
    url: str, path: Path_, make: Callable[[], requests.Session], threads: int, count: int
) -> tuple[list[float], int, int]:
    """`threads` clients each asking `count` times (a callable path: a new one per request);
    times in ms, the payload, the errors."""
    times: list[float] = []
    errors, payload = [0], [0]
    lock = threading.Lock()

    def client() -> None:
        session = make()
        for _ in range(count):
            target = path if isinstance(path, str) else path()
            started = time.perf_counter()
            answer = session.get(url + target, timeout=60)
            body = answer.content
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                times.append(elapsed)
                payload[0] = max(payload[0], len(body))
                errors[0] += answer.status_code != 200

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return times, payload[0], errors[0]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def paths(url: str, model: str, session: requests.Session) -> list[str]:
    pending = session.get(f"{url}/v1/releases", headers={"Authorization": f"Bearer {API_KEY}"})
    listed = pending.json()
    requests_ = listed.get("requests", listed) if isinstance(listed, dict) else listed
    request_id = next(r["id"] for r in requests_ if r["state"] == "pending")
    return [
        "/dashboard", "/v1/dashboard",
        f"/models/{model}", f"/v1/models/{model}/versions",
        "/releases", "/v1/releases",
        f"/releases/{request_id}", f"/v1/releases/{request_id}/detail",
    ]  # fmt: skip


def fleet_paths(customer: Customer) -> list[tuple[str, Path_]]:
    """The customer pages and their twins: labels and paths; a random device per request."""
    pick = random.Random(15)

    def device(prefix: str) -> Callable[[], str]:
        return lambda: f"{prefix}/{pick.choice(customer.devices)}"

    site = f"{customer.customer_id}-site-1"
    queries = ["", "?status=anomalous", f"?q={site}", "?sort=-anomaly_score"]
    listed: list[tuple[str, Path_]] = []
    for query in queries:
        listed += [(f"/fleet{query}", f"/fleet{query}")]
        listed += [(f"/v1/fleet/devices{query}", f"/v1/fleet/devices{query}")]
    listed.append(("/fleet/devices/{random}", device("/fleet/devices")))
    listed.append(("/v1/fleet/devices/{random}", device("/v1/fleet/devices")))
    return listed


def bench_setup(
    tracking_uri: str,
    customer: Customer,
    setup: str,
    cache_seconds: str,
    threads: int,
    count: int,
) -> list[PageTimes]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    env = {
        "MODELCYCLE_HOME": str(DATA),
        "MODELCYCLE_TRACKING_URI": tracking_uri,
        "MODELCYCLE_API_KEYS": API_KEY,
        "MODELCYCLE_LOG_FORMAT": "json",
        "MODELCYCLE_SERVING_CACHE_DIR": str(scratch / "cache"),
        "MODELCYCLE_DASHBOARD_CACHE_SECONDS": cache_seconds,
    }
    port = free_port()
    command = [sys.executable, "-m", "modelcycle", "serve", "--port", str(port)]
    results = []
    with run_server("modelcycle", command, env, "/readyz", "", {}, port, scratch / "api.log") as s:
        person = signed_in(s.url)
        viewer = signed_in(s.url, CUSTOMER_PERSON, "/fleet")
        settings = Settings(home=DATA)
        team = [(p, p) for p in paths(s.url, settings.classifier_model_name, person)]
        pages: list[tuple[str, Path_, requests.Session, str]] = [
            (label, path, person, API_KEY) for label, path in team
        ] + [(label, path, viewer, customer.api_key) for label, path in fleet_paths(customer)]
        for label, path, signed, key in pages:
            v1 = label.startswith("/v1/")
            make = partial(_keyed, key) if v1 else partial(_copy, signed)
            drive(s.url, path, make, 1, 3)  # warm-up: imports, first connections
            times, payload, errors = drive(s.url, path, make, threads, count)
            results.append(
                PageTimes(setup, label, statistics.median(times), p95(times), payload, errors)
            )
            print(f"{setup:12} {label:40} p50 {results[-1].p50_ms:7.1f} ms "
                  f"p95 {results[-1].p95_ms:7.1f} ms {payload / 1024:8.1f} KiB")  # fmt: skip
    return results


def _keyed(key: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


def _copy(person: requests.Session) -> requests.Session:
    session = requests.Session()
    session.cookies.update(person.cookies)
    return session


def judge(results: list[PageTimes]) -> Verdicts:
    verdicts = Verdicts("dashboard")
    for row in results:
        if row.setup != "kept":
            continue
        verdicts.add(Target(f"{row.path}: p95", row.p95_ms, P95_MS, " ms", digits=0))
        verdicts.add(Target(f"{row.path}: payload", row.payload / 1024, 1000, " KiB", digits=0))
        verdicts.add(Target(f"{row.path}: errors", row.errors, 0, "", digits=0))
    return verdicts


def render(results: list[PageTimes], conditions: Conditions, verdicts: Verdicts, n: str) -> str:
    rows = "\n".join(
        f"| {r.setup} | `{r.path}` | {r.p50_ms:,.0f} | {r.p95_ms:,.0f} | {r.payload / 1024:,.0f} |"
        for r in results
    )
    return f"""## Dashboard pages (issue 15, speed; `make bench-dashboard`)

{DEVICES} devices and {HISTORY_DAYS} days of history: two real trainings per model in a real
`mlflow server`, then **synthetic** history (bench/dashboard_home.py): one registered version per
day and model (copies of the newest real one, tagged `bench.synthetic`), and the store's
evaluations, drift (100 features a day), training runs, an anomaly alert per device and a
release request per version inserted directly. The customer pages (`/fleet…`, `/v1/fleet…`)
read the simulator's register ({DEVICES} devices, 20 customers), both models' scores of every
device-hour of the {HISTORY_DAYS} days and {SENSORS}-sensor hourly features of the last
{FEATURE_DAYS} days (random values, written by the real writers to the real keys), signed in
(and keyed) as a user of the largest customer (336 devices); `{{random}}`: a random device
of theirs per request, default window (7 days). A real `modelcycle serve`; a signed-in session
asks for each page and an API key for its `/v1/` twin, {n}. Time is request sent to last byte
on loopback (server time plus loopback). `kept`: the registry reads kept
(`MODELCYCLE_DASHBOARD_CACHE_SECONDS`, default 15 s), the product as shipped and judged; `every
page`: `0`, each page reading MLflow (still only the newest ten versions), for comparison. A
page whose kept reads have expired pays the `every page` time once per interval and viewer;
each page's run here is shorter than the interval, so the `kept` figures are the steady state,
not that first view. Measured
{machine_line()}. {run_line(conditions)}

`/static/plotly.min.js` (4.8 MB) is not a page's payload: an asset served with
`Cache-Control: max-age=86400`, fetched once a day per browser.

| setup | page | p50 ms | p95 ms | payload KiB |
|---|---|---:|---:|---:|
{rows}

{verdicts.table()}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="concurrent clients per page")
    parser.add_argument("--requests", type=int, default=30, help="requests per client and page")
    parser.add_argument(
        "--baseline-requests", type=int, default=5, help="the same without kept reads (slow)"
    )
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    with mlflow_server(DATA) as tracking_uri:
        prepare_home(tracking_uri)
        customer = prepare_fleet(tracking_uri)
        conditions = Conditions()
        results = bench_setup(tracking_uri, customer, "kept", "15", args.threads, args.requests)
        results += bench_setup(
            tracking_uri, customer, "every page", "0", args.threads, args.baseline_requests
        )
        conditions.finish()
    verdicts = judge(results)
    n = (
        f"{args.threads} clients × {args.requests} requests per page after 3 warm-up requests "
        f"({args.baseline_requests} each for `every page`)"
    )
    markdown = render(results, conditions, verdicts, n)
    write_section("dashboard", markdown)
    print(markdown)
    verdicts.finish(conditions)


if __name__ == "__main__":
    main()
