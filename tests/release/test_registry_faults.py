"""The alias move and the audit row commit together or not at all, proven with real faults: the
MLflow server stopped in the middle of the move, the store's connection killed before commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg2
import pytest
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import Identity
from modelcycle.errors import RegistryError, StorageError
from modelcycle.release.registry import (
    JOURNAL_TAG,
    RegistryHalfChangedError,
    ReleaseRegistry,
)
from modelcycle.settings import Settings
from modelcycle.store import Store
from tests.release.conftest import GATES_PASSED, aliases, register_versions, releases_for
from tests.support.registry import server_client
from tests.support.servers import (
    LOOPBACK,
    MLFLOW_STARTUP_TIMEOUT,
    free_port,
    mlflow_server_command,
    run_server_process,
)


class OwnMlflow:
    """An MLflow server of this test alone, on SQLite, that can be stopped and started again on
    the same port with the same registry."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.uri = f"http://{LOOPBACK}:{self.port}"
        self.command = mlflow_server_command(
            backend_store_uri=f"sqlite:///{folder / 'mlflow.db'}",
            default_artifact_root=str(folder / "artifacts"),
            port=self.port,
        )
        self.log = folder / "mlflow.log"
        self._running: ExitStack | None = None

    def start(self) -> None:
        stack = ExitStack()
        stack.enter_context(
            run_server_process(
                self.command,
                health_url=f"{self.uri}/health",
                log_path=self.log,
                env={
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                },
                timeout=MLFLOW_STARTUP_TIMEOUT,
            )
        )
        self._running = stack

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.close()


@pytest.fixture
def own_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnMlflow]:
    # A refused connection fails at once instead of after MLflow's minutes of retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    server = OwnMlflow(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class StopsAfterFirstAlias(ReleaseRegistry):
    """The real registry; the server is stopped once the first alias has moved, and started
    again in the background (as an operator would bring it back)."""

    def __init__(self, client: MlflowClient, server: OwnMlflow, *, restart: bool = True):
        super().__init__(client)
        self.server = server
        self.restart = restart
        self.restarted = threading.Thread(target=server.start)
        self.stopped = False

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        super().set_alias(model, alias, version)
        if not self.stopped:
            self.stopped = True
            self.server.stop()
            if self.restart:
                self.restarted.start()


@pytest.mark.slow
@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_mlflow_stopped_in_the_middle_of_the_move_leaves_no_decision_and_the_aliases_as_before(
    store: Store, own_mlflow: OwnMlflow, people: dict[str, Identity], model_name: str
) -> None:
    client = server_client(own_mlflow.uri)
    register_versions(client, model_name, 2)
    registry = StopsAfterFirstAlias(client, own_mlflow)
    releases = releases_for(store, client, registry=registry, restore_seconds=180)
    request = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
    )

    with pytest.raises(RegistryError, match="the registry was restored and nothing was decided"):
        releases.approve(request.id, actor=people["alice"], comment="ship it")

    registry.restarted.join()
    # the decision's tags and `previous` were written, then undone; `champion` never moved
    assert aliases(client, model_name) == {"champion": "1"}
    assert "modelcycle.release.decision" not in client.get_model_version(model_name, "2").tags
    assert releases.get(request.id)[0].state == "pending"
    assert [d.action for d in releases.history(model_name)] == ["open"]

    # With the server back, the same approval goes through.
    releases_for(store, client).approve(request.id, actor=people["alice"], comment="ship it")
    assert aliases(client, model_name) == {"champion": "2", "previous": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_a_move_that_mlflow_cut_short_for_good_is_undone_by_the_next_decision_on_the_model(
    store: Store, own_mlflow: OwnMlflow, people: dict[str, Identity], model_name: str
) -> None:
    """MLflow stays down past the undo's deadline: the journal on the registered model lets the
    next decision (here, another process's rejection) put the registry back first."""
    client = server_client(own_mlflow.uri)
    register_versions(client, model_name, 2)
    registry = StopsAfterFirstAlias(client, own_mlflow, restart=False)
    releases = releases_for(store, client, registry=registry, restore_seconds=0)
    request = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
    )
    with pytest.raises(RegistryHalfChangedError, match="the next decision on it puts back"):
        releases.approve(request.id, actor=people["alice"], comment="ship it")

    own_mlflow.start()
    assert aliases(client, model_name) == {"champion": "1", "previous": "1"}  # half-changed
    assert JOURNAL_TAG in client.get_registered_model(model_name).tags
    assert releases.get(request.id)[0].state == "pending"

    releases_for(store, client).reject(request.id, actor=people["bob"], comment="not today")

    assert aliases(client, model_name) == {"champion": "1"}
    tags = client.get_model_version(model_name, "2").tags
    assert tags["modelcycle.release.decision"] == "reject"
    assert "modelcycle.release.champion_move" not in tags  # the approval's, undone
    assert JOURNAL_TAG not in client.get_registered_model(model_name).tags
    assert [d.action for d in releases.history(model_name)] == ["open", "reject"]


class KillsTheStoreConnection(ReleaseRegistry):
    """The real registry; once `champion` has moved (the last write), the store's connections
    are terminated by PostgreSQL, so the decision's commit fails."""

    def __init__(self, client: MlflowClient, database_url: str):
        super().__init__(client)
        self.database_url = database_url.replace("+psycopg2", "")
        self.killed = False

    def set_alias(self, model: str, alias: str, version: str | None) -> None:
        super().set_alias(model, alias, version)
        if alias == "champion" and not self.killed:
            self.killed = True
            connection = psycopg2.connect(self.database_url)
            try:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
            finally:
                connection.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_settings", ["postgres"], indirect=True)
def test_a_store_commit_that_fails_after_the_move_moves_the_aliases_back(
    store: Store,
    store_settings: Settings,
    client: MlflowClient,
    people: dict[str, Identity],
    model_name: str,
) -> None:
    register_versions(client, model_name, 2)
    assert store_settings.database_url is not None
    registry = KillsTheStoreConnection(client, store_settings.database_url)
    releases = releases_for(store, client, registry=registry)
    request = releases.open(
        model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
    )

    with pytest.raises(StorageError, match=r"could not be stored.*the registry was restored"):
        releases.approve(request.id, actor=people["alice"])

    assert registry.killed
    assert aliases(client, model_name) == {"champion": "1"}
    assert "modelcycle.release.decision" not in client.get_model_version(model_name, "2").tags
    assert releases.get(request.id)[0].state == "pending"
    assert [d.action for d in releases.history(model_name)] == ["open"]
