"""Approval → serving: how long after a decision returns does the API answer with the new version?

A real `mlflow server` holds two trained versions of the classifier; a real `modelcycle serve`
serves its champion. Each pair approves version 2 (a person, prod policy) and rolls back to 1 (an
admin); the time measured runs from the decision's return to the first prediction answered by the
version it chose. Two API set-ups in the same run: the MLflow registry webhook configured (poll
an hour away, so only the push explains a swap) and poll-only (the peer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from mlflow.tracking import MlflowClient

from bench.report import machine_line, write_section
from bench.serving_load import Server, free_port, run_server
from bench.verdict import Conditions, Target, Verdicts, run_line
from modelcycle.access.identity import Role
from modelcycle.access.users import add_user
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.settings import Settings
from modelcycle.store import open_store

DATA = Path(__file__).resolve().parent / ".data" / "release-home"
START = "2026-01-01"
DAYS = 3
MODEL = "sensor-fault-classifier"
API_KEY = "bench-key"
WEBHOOK_SECRET = "bench-webhook-secret"
SWAP_TIMEOUT = 120.0
# Registry webhooks to a loopback receiver over plain HTTP; the webhook list cached for 1 s only.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


@dataclass(frozen=True)
class Swaps:
    setup: str
    action: str
    seconds: list[float]


def _cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "modelcycle", *args], env={**os.environ, **env}, check=True
    )


@contextmanager
def mlflow_server(home: Path) -> Iterator[str]:
    """The registry on its own server: webhooks are sent by the server, not by a client."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"),
        *("--default-artifact-root", str(home / "artifacts"), "--no-serve-artifacts"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    log = home / "mlflow.log"
    with run_server("mlflow", command, MLFLOW_ENV, "/health", "/", {}, port, log) as server:
        yield server.url


def prepare_home(tracking_uri: str) -> None:
    """Simulated data, ingested, trained twice: version 1 is champion, version 2 challenger."""
    marker = DATA / "prepared"
    if marker.exists():
        return
    env = {"MODELCYCLE_HOME": str(DATA), "MODELCYCLE_TRACKING_URI": tracking_uri}
    raw = str(DATA / "raw")
    _cli("simulate", "--out", raw, "--devices", "24", "--sensors", "10", "--days", str(DAYS),
         "--start", START, "--seed", "11", env=env)  # fmt: skip
    days = [f"2026-01-0{i + 1}" for i in range(DAYS)]
    for day in days:
        _cli("ingest", "--date", day, env=env)
    for seed in ("42", "7"):
        _cli("train", "--date", days[-1], "--window-days", str(DAYS), "--seed", seed, env=env)
    marker.touch()


def answering_version(server: Server, body: dict[str, object]) -> str:
    answer = requests.post(server.url + server.path, json=body, headers=server.headers, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["version"])


def seconds_until(server: Server, body: dict[str, object], version: str) -> float:
    """From now until a prediction is answered by `version`."""
    started = time.perf_counter()
    while time.perf_counter() - started < SWAP_TIMEOUT:
        if answering_version(server, body) == version:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise SystemExit(f"the API did not serve version {version} within {SWAP_TIMEOUT} s")


def run_pairs(
    server: Server, releases: Releases, body: dict[str, object], pairs: int, setup: str
) -> list[Swaps]:
    with releases.store.session() as session:
        people = {
            name: add_user(session=session, name=name, role=role)
            for name, role in (
                ("otto", Role.OPERATOR),
                ("alice", Role.APPROVER),
                ("root", Role.ADMIN),
            )
        }
    approve, rollback = Swaps(setup, "approve", []), Swaps(setup, "rollback", [])
    gates = [{"name": "metric", "passed": True}]
    for _ in range(pairs):
        version = copy_of_challenger(releases.registry.client)
        request = releases.open(
            model=MODEL, version=version, requested_by=people["otto"], gates=gates
        )
        releases.approve(request.id, actor=people["alice"], comment="bench")
        approve.seconds.append(seconds_until(server, body, version))
        releases.rollback(MODEL, actor=people["root"], comment="bench")
        rollback.seconds.append(seconds_until(server, body, "1"))
    return [approve, rollback]


def copy_of_challenger(client: MlflowClient) -> str:
    """A new version with version 2's artifact and tags: a version is released only once, and
    the API must fetch and load it as it would a newly trained one."""
    challenger = client.get_model_version(MODEL, "2")
    source = str(challenger.source)  # models:/<logged model id>
    copy = client.create_model_version(
        MODEL,
        source=source,
        run_id=challenger.run_id,
        tags=challenger.tags,
        model_id=challenger.model_id or source.removeprefix("models:/"),
    )
    return str(copy.version)


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20, help="approve/rollback pairs per setup")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="poll-only interval")
    parser.add_argument("--quick", action="store_true", help="5 pairs: a smoke run")
    args = parser.parse_args()
    pairs = 5 if args.quick else args.pairs
    DATA.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-release-"))
    conditions = Conditions()
    results: list[Swaps] = []
    with mlflow_server(DATA) as tracking_uri:
        prepare_home(tracking_uri)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.set_registered_model_alias(MODEL, "champion", "1")
        setups = {
            "webhook": {"MODELCYCLE_SERVING_POLL_SECONDS": "3600"},
            "poll only": {"MODELCYCLE_SERVING_POLL_SECONDS": str(args.poll_seconds)},
        }
        setups["webhook"]["MODELCYCLE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        for setup, extra in setups.items():
            results += bench_setup(client, tracking_uri, scratch / setup.replace(" ", "-"),
                                   extra, pairs, setup)  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    conditions.finish()
    verdicts = judge(results, args.poll_seconds)
    markdown = render(results, pairs, args.poll_seconds, conditions, verdicts)
    write_section("release", markdown)
    print(markdown)
    verdicts.finish(conditions)


def judge(results: list[Swaps], poll_seconds: float) -> Verdicts:
    """Each decision's median: within the poll interval polling, within a second by webhook."""
    verdicts = Verdicts("release")
    for swaps in results:
        limit = 1.0 if swaps.setup == "webhook" else poll_seconds
        verdicts.add(
            Target(
                f"{swaps.setup}, {swaps.action}: median to serving",
                statistics.median(swaps.seconds),
                limit,
                " s",
            )
        )
    return verdicts


def bench_setup(
    client: MlflowClient,
    tracking_uri: str,
    scratch: Path,
    extra: dict[str, str],
    pairs: int,
    setup: str,
) -> list[Swaps]:
    """One API process (and, with a secret, its registry webhook) through `pairs` pairs."""
    env = {
        "MODELCYCLE_HOME": str(DATA),
        "MODELCYCLE_TRACKING_URI": tracking_uri,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODELCYCLE_API_KEYS": API_KEY,
        "MODELCYCLE_LOG_FORMAT": "json",
        "MODELCYCLE_SERVING_CACHE_DIR": str(scratch / "cache"),
        **extra,
    }
    port = free_port()
    command = [sys.executable, "-m", "modelcycle", "serve", "--port", str(port)]
    path, auth = f"/v1/models/{MODEL}/predict", {"Authorization": f"Bearer {API_KEY}"}
    scratch.mkdir(parents=True)
    store = open_store(Settings(home=scratch, tracking_uri=tracking_uri))
    releases = Releases(
        store=store, registry=ReleaseRegistry(client), environment="prod", auto_approve=False
    )
    webhook_id = None
    try:
        with run_server(
            "modelcycle", command, env, "/readyz", path, auth, port, scratch / "api.log"
        ) as server:
            models = requests.get(server.url + "/v1/models", headers=auth, timeout=10).json()
            features = next(m["features"] for m in models["models"] if m["name"] == MODEL)
            body: dict[str, object] = {"instances": [[0.5] * len(features)]}
            if "MODELCYCLE_WEBHOOK_SECRET" in extra:
                webhook_id = client.create_webhook(
                    name=f"bench-{port}",
                    url=f"{server.url}/v1/webhooks/mlflow",
                    events=["model_version_alias.created"],
                    secret=WEBHOOK_SECRET,
                ).webhook_id
            seconds_until(server, body, "1")
            return run_pairs(server, releases, body, pairs, setup)
    finally:
        if webhook_id is not None:
            client.delete_webhook(webhook_id)
        store.close()
        client.set_registered_model_alias(MODEL, "champion", "1")


def render(
    results: list[Swaps],
    pairs: int,
    poll_seconds: float,
    conditions: Conditions,
    verdicts: Verdicts,
) -> str:
    setup_text = (
        f"{machine_line()}; a real `mlflow server` (SQLite, local artifacts) and `modelcycle "
        f"serve`, both on loopback; the classifier of a small fleet (24 devices, 10 sensors), "
        f"{pairs} approve/rollback pairs per set-up. Time runs from the decision's return "
        "(`Releases.approve` / `rollback`, the alias moved in the registry) to the first "
        "prediction answered by the chosen version (polled every 10 ms). webhook: the MLflow "
        "registry webhook configured and the poll an hour away; poll only: "
        f"`MODELCYCLE_SERVING_POLL_SECONDS={poll_seconds:g}`."
    )
    lines = [
        "## Release: approval → the API answering with the new version (`make bench-release`)",
        "",
        textwrap.fill(setup_text, width=100),
        "",
        run_line(conditions),
        "",
        "| set-up | decision | median s | p90 s | max s |",
        "|---|---|---:|---:|---:|",
    ]
    for swaps in results:
        s = swaps.seconds
        lines.append(
            f"| {swaps.setup} | {swaps.action} | {statistics.median(s):.2f} | {p90(s):.2f} "
            f"| {max(s):.2f} |"
        )
    targets = (
        "Targets (issue 14): the API follows within the reload interval; with the webhook, "
        "within seconds whatever the poll interval. A swap loads and warms the new version "
        "beside the old one, so no request fails meanwhile (tests/release/test_under_load.py)."
    )
    lines += ["", textwrap.fill(targets, width=100), "", verdicts.table()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
