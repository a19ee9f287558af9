"""Users' API keys at the API, on a real uvicorn: a key created with the CLI works, is kept only
hashed, and stops working once revoked or once its user is removed; MODELCYCLE_API_KEYS still
works, as the service identity. The store is SQLite and PostgreSQL in turn.

No trained models are needed: `/v1/whoami` and `/v1/models` answer with nothing served.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import API_KEY, ApiServer, start_api
from tests.support.cli import invoke_cli
from tests.support.database import stored_text
from tests.support.servers import (
    LOOPBACK,
    create_postgres_database_or_skip,
    drop_postgres_database,
    free_port,
    sqlalchemy_postgres_url,
)

WAIT_SECONDS = 30.0  # a deadline for the API to see a change, not a speed requirement


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Settings of a migrated store, for the CLI and the API alike."""
    home = tmp_path_factory.mktemp("user-keys")
    postgres = create_postgres_database_or_skip() if request.param == "postgres" else None
    url = sqlalchemy_postgres_url(postgres) if postgres else f"sqlite:///{home / 'store.db'}"
    env = {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_DATABASE_URL": url,
        "MODELCYCLE_LOG_LEVEL": "WARNING",
    }
    try:
        _ok("db", "upgrade", env=env)
        yield env
    finally:
        if postgres:
            drop_postgres_database(postgres)


@pytest.fixture(scope="module")
def api(store_env: dict[str, str], server_log_dir: Path) -> Iterator[ApiServer]:
    """The API with MODELCYCLE_API_KEYS set (start_api's key) and users' keys from the store,
    re-read every 0.2 s; its registry is a closed port, so nothing is served."""
    env = {
        **store_env,
        "MODELCYCLE_TRACKING_URI": f"http://{LOOPBACK}:{free_port()}",
        "MODELCYCLE_SERVING_POLL_SECONDS": "0.5",
        "MODELCYCLE_SERVING_KEY_REFRESH_SECONDS": "0.2",
        "MODELCYCLE_LOG_LEVEL": "INFO",
    }
    with start_api(env, server_log_dir) as server:
        _wait_for_first_key_read(server)
        yield server


def _wait_for_first_key_read(api: ApiServer) -> None:
    """The first read of the keys opens the store (and imports SQLAlchemy): wait for it, so a
    test's deadline measures the change it makes, not the API's cold start."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tasks = {task["name"]: task for task in api.get("/v1/models").json()["tasks"]}
        if tasks["api_keys_poll"]["last_success"] is not None:
            return
        time.sleep(0.1)
    raise AssertionError(f"the API never read users' keys; log {api.log_path}")


def _ok(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = invoke_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def _whoami(api: ApiServer, key: str | None, scheme: str = "Bearer") -> requests.Response:
    headers = {"Authorization": f"{scheme} {key}"} if key is not None else {}
    return requests.get(f"{api.url}/v1/whoami", headers=headers, timeout=10)


def _wait_for_status(api: ApiServer, key: str, status: int) -> requests.Response:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        answer = _whoami(api, key)
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            return answer
        time.sleep(0.05)


def _new_key(env: dict[str, str], user: str, role: str) -> str:
    _ok("users", "add", user, "--role", role, env=env)
    return _ok("users", "key", "create", user, "--label", "test", env=env).stdout.strip()


def test_a_users_key_works_is_stored_hashed_and_is_refused_once_revoked(
    api: ApiServer, store_env: dict[str, str]
) -> None:
    key = _new_key(store_env, "alice", "approver")
    answer = _wait_for_status(api, key, 200)
    assert answer.json() == {
        "name": "alice",
        "role": "approver",
        "kind": "person",
        "customer_id": None,
    }
    models = requests.get(
        f"{api.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert models.status_code == 200
    assert key not in stored_text(store_env["MODELCYCLE_DATABASE_URL"])

    deadline = time.monotonic() + WAIT_SECONDS  # the use is written with a later re-read
    while True:
        (listed,) = json.loads(_ok("users", "key", "list", "alice", "--json", env=store_env).stdout)
        if listed["last_used_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert listed["last_used_at"] is not None

    _ok("users", "key", "revoke", key[:8], env=store_env)
    refused = _wait_for_status(api, key, 401)
    assert refused.json() == {"detail": "missing or invalid API key (Authorization: Bearer <key>)"}
    assert key not in api.log_path.read_text()


def test_a_removed_users_key_is_refused(api: ApiServer, store_env: dict[str, str]) -> None:
    key = _new_key(store_env, "bob", "operator")
    _wait_for_status(api, key, 200)
    _ok("users", "remove", "bob", env=store_env)
    _wait_for_status(api, key, 401)


def test_a_new_role_reaches_the_api(api: ApiServer, store_env: dict[str, str]) -> None:
    key = _new_key(store_env, "carol", "viewer")
    assert _wait_for_status(api, key, 200).json()["role"] == "viewer"
    _ok("users", "set-role", "carol", "approver", env=store_env)
    deadline = time.monotonic() + WAIT_SECONDS
    while _whoami(api, key).json()["role"] != "approver" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _whoami(api, key).json()["role"] == "approver"


def test_a_configured_key_still_works_as_the_service_identity(api: ApiServer) -> None:
    answer = _whoami(api, API_KEY)
    assert answer.status_code == 200
    assert answer.json() == {
        "name": "service:api-keys",
        "role": "operator",
        "kind": "service",
        "customer_id": None,
    }
    assert api.get("/v1/models").status_code == 200


def test_made_up_missing_and_misspelled_keys_are_refused(
    api: ApiServer, store_env: dict[str, str]
) -> None:
    key = _new_key(store_env, "dave", "viewer")
    _wait_for_status(api, key, 200)
    for made_up, scheme in (
        ("mc_" + "x" * 43, "Bearer"),
        (key[:-2], "Bearer"),
        ("not-a-key", "Bearer"),
        (key, "Basic"),
        (None, "Bearer"),
    ):
        assert _whoami(api, made_up, scheme).status_code == 401, (made_up, scheme)
