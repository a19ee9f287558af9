"""Approve and roll back while the API is answering predictions the whole time.

Real MLflow server, real uvicorn with a short reload interval, a client thread that counts every
request it sends and every answer: the swap to a new version and back must not drop a request.
What is asserted is that the new version is served and nothing failed, never how long it took
beyond the reload interval's generous margin.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from modelcycle.access.identity import Identity, Role
from modelcycle.access.users import add_user
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.settings import Settings
from modelcycle.store import Store
from tests.access.conftest import migrated_store
from tests.release.conftest import GATES_PASSED
from tests.serving.conftest import TrainedRegistry, fleet_home, trained_registry
from tests.support.api import ApiServer, start_api
from tests.support.registry import server_client

pytestmark = pytest.mark.slow
__all__ = ["fleet_home", "trained_registry"]  # the shared trained registry, from tests/serving

POLL_SECONDS = 0.5
SWAP_TIMEOUT = POLL_SECONDS + 20.0  # the reload interval, plus loading the new model


@dataclass
class LoadClient:
    """Sends predictions back to back from a thread; counts what was sent and what came back."""

    api: ApiServer
    model: str
    rows: list[list[float]]
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    last_version: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LoadClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        url = f"{self.api.url}/v1/models/{self.model}/predict"
        with requests.Session() as session:
            while not self._stop.is_set():
                self.sent += 1
                try:
                    answer = session.post(
                        url, json={"instances": self.rows}, headers=self.api.auth, timeout=10
                    )
                except requests.RequestException as error:  # refused, reset or timed out
                    self.errors.append(f"{type(error).__name__}: {error}")
                    continue
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.last_version = str(answer.json()["version"])
                    self.versions[self.last_version] += 1

    def wait_for_version(self, version: str, timeout: float) -> None:
        """Until the client's own predictions come back from `version`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last_version == version:
                return
            time.sleep(0.05)
        raise AssertionError(f"predictions still from {self.last_version}, not {version}")

    def wait_for_more(self, count: int, timeout: float = 30.0) -> None:
        target = self.sent + count
        deadline = time.monotonic() + timeout
        while self.sent < target and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def releases(trained_registry: TrainedRegistry, tmp_path: Path) -> Iterator[Releases]:
    """The prod policy over the shared registry, with its own store; champion back to v1 after."""
    client = server_client(trained_registry.server.tracking_uri)
    store: Store = migrated_store(Settings(home=tmp_path))
    try:
        yield Releases(
            store=store, registry=ReleaseRegistry(client), environment="prod", auto_approve=False
        )
    finally:
        store.close()
        name = trained_registry.classifier
        client.set_registered_model_alias(name, "champion", "1")
        if "previous" in client.get_registered_model(name).aliases:
            client.delete_registered_model_alias(name, "previous")


@pytest.fixture
def people(releases: Releases) -> dict[str, Identity]:
    with releases.store.session() as session:
        return {
            name: add_user(session=session, name=name, role=role)
            for name, role in (
                ("otto", Role.OPERATOR),
                ("alice", Role.APPROVER),
                ("root", Role.ADMIN),
            )
        }


@pytest.fixture
def polling_api(
    trained_registry: TrainedRegistry, tmp_path: Path, server_log_dir: Path
) -> Iterator[ApiServer]:
    env = {
        **trained_registry.env,
        "MODELCYCLE_SERVING_CACHE_DIR": str(tmp_path / "cache"),
        "MODELCYCLE_SERVING_POLL_SECONDS": str(POLL_SECONDS),
    }
    with start_api(env, server_log_dir) as server:
        server.wait_ready()
        yield server


def test_approve_then_rollback_under_load_drops_no_request(
    polling_api: ApiServer,
    trained_registry: TrainedRegistry,
    releases: Releases,
    people: dict[str, Identity],
) -> None:
    name = trained_registry.classifier
    polling_api.wait_for_version(name, "1")
    features = polling_api.get("/v1/models").json()["models"][0]["features"]
    rows = [[0.5] * len(features)] * 4

    with LoadClient(polling_api, name, rows) as load:
        load.wait_for_version("1", timeout=30)
        request = releases.open(
            model=name, version="2", requested_by=people["otto"], gates=GATES_PASSED
        )
        assert request.state == "pending"
        releases.approve(request.id, actor=people["alice"], comment="under load")
        load.wait_for_version("2", timeout=SWAP_TIMEOUT)
        assert polling_api.served_version(name) == "2"
        load.wait_for_more(20)

        rollback = releases.rollback(name, actor=people["root"], comment="back under load")
        assert (rollback.alias_from, rollback.alias_to) == ("2", "1")
        load.wait_for_version("1", timeout=SWAP_TIMEOUT)
        assert polling_api.served_version(name) == "1"
        load.wait_for_more(20)

    assert load.errors == [], load.errors[:3]
    assert dict(load.statuses) == {200: load.sent}, load.statuses
    assert sum(load.versions.values()) == load.sent
    assert load.versions["1"] > 0 and load.versions["2"] > 0
