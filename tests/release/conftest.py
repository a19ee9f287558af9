"""Releases against a real MLflow server and the store on SQLite or PostgreSQL.

Versions are registered straight from a source URI (no model is trained): the alias logic and
the audit trail need versions, not weights.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import Identity, Role
from modelcycle.access.users import add_user
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.settings import Settings
from modelcycle.store import Store
from tests.access.conftest import migrated_store, store_settings
from tests.support.registry import server_client
from tests.support.servers import MlflowServer

__all__ = ["store_settings"]  # the store fixture, SQLite and PostgreSQL

GATES_PASSED = [
    {"name": "metric", "passed": True, "detail": "f1 0.91 ≥ champion 0.90 - 0.02"},
    {"name": "onnx_parity", "passed": True},
]
GATES_FAILED = [
    {"name": "metric", "passed": False, "detail": "f1 0.80 < champion 0.90 - 0.02"},
    {"name": "onnx_parity", "passed": True},
]


def register_versions(client: MlflowClient, model: str, count: int) -> list[str]:
    """`count` new versions of `model`; the first becomes champion, as training's first does."""
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    versions = []
    for _ in range(count):
        version = client.create_model_version(model, source=f"s3://nowhere/{uuid.uuid4().hex}")
        versions.append(str(version.version))
    if client.get_registered_model(model).aliases.get("champion") is None:
        client.set_registered_model_alias(model, "champion", versions[0])
    return versions


@pytest.fixture
def store(store_settings: Settings) -> Iterator[Store]:
    opened = migrated_store(store_settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def people(store: Store) -> dict[str, Identity]:
    with store.session() as session:
        return {
            name: add_user(session=session, name=name, role=role)
            for name, role in (
                ("vera", Role.VIEWER),
                ("otto", Role.OPERATOR),
                ("alice", Role.APPROVER),
                ("bob", Role.APPROVER),
                ("root", Role.ADMIN),
            )
        }


@pytest.fixture
def model_name() -> str:
    return f"release-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(mlflow_sqlite_server: MlflowServer) -> MlflowClient:
    return server_client(mlflow_sqlite_server.tracking_uri)


def releases_for(
    store: Store,
    client: MlflowClient,
    *,
    auto_approve: bool = False,
    environment: str = "prod",
    registry: ReleaseRegistry | None = None,
    restore_seconds: float = 30.0,
) -> Releases:
    return Releases(
        store=store,
        registry=registry or ReleaseRegistry(client),
        environment=environment,
        auto_approve=auto_approve,
        restore_seconds=restore_seconds,
    )


@pytest.fixture
def releases(store: Store, client: MlflowClient) -> Releases:
    """The prod policy: a person decides."""
    return releases_for(store, client)


def aliases(client: MlflowClient, model: str) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(model).aliases.items()}
