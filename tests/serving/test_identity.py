"""Who the API takes a caller to be: roles on a route (`require`), when the API is open, and what
happens when users' keys cannot be read. The app runs in this process over a real store; its
model registry is a fake with nothing in it (no model is needed to tell callers apart).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from modelcycle.access.identity import Identity, Role
from modelcycle.access.keys import create_api_key
from modelcycle.access.users import add_user
from modelcycle.serving.app import build_services, create_app
from modelcycle.serving.identity import require
from modelcycle.serving.services import Services
from modelcycle.settings import Settings
from modelcycle.store import open_store
from tests.serving.test_metrics_accuracy import NoRegistry
from tests.support.cli import invoke_cli
from tests.support.servers import LOOPBACK, free_port

SERVICE_KEY = "service-key-31c9"


def _api(settings: Settings, *, open_allowed: bool = True) -> tuple[FastAPI, Services]:
    """The API, with one route that needs the approver role, as release decisions do."""
    services = build_services(settings, source=NoRegistry(), open_allowed=open_allowed)
    app = create_app(settings, services)

    @app.post("/v1/test/approve")
    async def approve(
        actor: Annotated[Identity, Depends(require(Role.APPROVER))],
    ) -> dict[str, str]:
        return {"approved_by": actor.name}

    return app, services


def _calls(app: FastAPI, *calls: tuple[str, str, str | None]) -> list[httpx.Response]:
    """(method, path, key) requests, in order, on one event loop."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            answers = []
            for method, path, key in calls:
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                answers.append(await client.request(method, path, headers=headers))
            return answers

    return asyncio.run(send())


def _user_keys(settings: Settings, roles: dict[str, Role]) -> dict[str, str]:
    store = open_store(settings)
    try:
        with store.session() as session:
            keys = {}
            for name, role in roles.items():
                add_user(session=session, name=name, role=role)
                keys[name] = create_api_key(session=session, user=name)
    finally:
        store.close()
    return keys


def test_a_route_that_needs_an_approver_tells_everybody_else_why_not(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_keys=SERVICE_KEY)
    keys = _user_keys(
        settings,
        {"vera": Role.VIEWER, "otto": Role.OPERATOR, "ada": Role.APPROVER, "root": Role.ADMIN},
    )
    app, _ = _api(settings)
    calls = [("POST", "/v1/test/approve", key) for key in (*keys.values(), SERVICE_KEY, None)]
    vera, otto, ada, root, service, nobody = _calls(app, *calls)
    assert (vera.status_code, vera.json()) == (
        403,
        {"detail": "requires the approver role; vera is a viewer"},
    )
    assert otto.json() == {"detail": "requires the approver role; otto is an operator"}
    assert (ada.status_code, ada.json()) == (200, {"approved_by": "ada"})
    assert (root.status_code, root.json()) == (200, {"approved_by": "root"})
    assert service.json() == {
        "detail": "requires the approver role; service:api-keys is an operator"
    }
    assert nobody.status_code == 401


def _whoami(answer: httpx.Response) -> tuple[int, Any]:
    return answer.status_code, answer.json().get("name", answer.json())


def test_in_local_without_any_key_the_api_is_open_as_the_local_admin_until_a_user_has_one(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, api_keys=None)
    app, services = _api(settings)
    (open_call,) = _calls(app, ("GET", "/v1/whoami", None))
    assert open_call.json() == {
        "name": "local",
        "role": "admin",
        "kind": "person",
        "customer_id": None,
    }
    key = _user_keys(settings, {"alice": Role.OPERATOR})["alice"]
    assert services.keys.refresh() is None  # the next round of the key poll
    closed, alice = _calls(app, ("GET", "/v1/whoami", None), ("GET", "/v1/whoami", key))
    assert _whoami(closed) == (401, {"detail": closed.json()["detail"]})
    assert _whoami(alice) == (200, "alice")


@pytest.mark.parametrize(
    ("environment", "open_allowed"), [("dev", True), ("prod", True), ("local", False)]
)
def test_the_api_is_never_open_outside_local_nor_where_serve_was_not_allowed_to_open_it(
    tmp_path: Path, environment: str, open_allowed: bool
) -> None:
    settings = Settings(home=tmp_path, api_keys=None, environment=environment)
    app, _ = _api(settings, open_allowed=open_allowed)
    (answer,) = _calls(app, ("GET", "/v1/whoami", None))
    assert answer.status_code == 401


def test_when_users_keys_cannot_be_read_their_callers_get_503_and_configured_keys_still_work(
    tmp_path: Path,
) -> None:
    dead_store = f"postgresql+psycopg2://postgres:hunter2@{LOOPBACK}:{free_port()}/none"
    keyed = Settings(home=tmp_path, api_keys=SERVICE_KEY, database_url=dead_store)
    app, _ = _api(keyed)
    user, service, wrong, models = _calls(
        app,
        ("GET", "/v1/whoami", "mc_" + "k" * 43),
        ("GET", "/v1/whoami", SERVICE_KEY),
        ("GET", "/v1/whoami", "not-a-key"),
        ("GET", "/v1/models", SERVICE_KEY),
    )
    assert user.status_code == 503
    assert user.json()["detail"].startswith("cannot check API keys")
    assert "cannot reach the monitoring store" in user.json()["detail"]
    assert "hunter2" not in user.text
    assert _whoami(service) == (200, "service:api-keys")
    assert wrong.status_code == 401
    (poll,) = [task for task in models.json()["tasks"] if task["name"] == "api_keys_poll"]
    assert poll["errors"] >= 1 and "cannot reach the monitoring store" in poll["last_error"]

    open_app, _ = _api(Settings(home=tmp_path, api_keys=None, database_url=dead_store))
    (unknown,) = _calls(open_app, ("GET", "/v1/whoami", None))
    assert unknown.status_code == 503  # open only once the store says nobody has a key


def test_serve_refuses_to_run_without_any_key_outside_local(tmp_path: Path) -> None:
    result = invoke_cli(
        "serve",
        "--port",
        str(free_port()),
        env={
            "MODELCYCLE_HOME": str(tmp_path),
            "MODELCYCLE_ENVIRONMENT": "dev",
            "MODELCYCLE_API_KEYS": "",
        },
    )
    assert result.returncode == 2, result.stderr
    assert "no API keys: MODELCYCLE_API_KEYS is empty and no user has a key" in result.stderr
    assert "Traceback" not in result.stderr


def test_made_up_user_keys_read_the_store_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelcycle.access.keys

    settings = Settings(home=tmp_path, api_keys=SERVICE_KEY)
    real_key = _user_keys(settings, {"alice": Role.OPERATOR})["alice"]
    reads: list[float] = []
    read_keys = modelcycle.access.keys.key_holders

    def counted(**kwargs: Any) -> Any:  # the real read, counted
        reads.append(time.monotonic())
        return read_keys(**kwargs)

    monkeypatch.setattr(modelcycle.access.keys, "key_holders", counted)
    app, _ = _api(settings)
    started = time.monotonic()
    answers = _calls(
        app,
        ("GET", "/v1/whoami", real_key),
        *[("GET", "/v1/whoami", f"mc_made-up-{n:040d}") for n in range(40)],
    )
    elapsed = time.monotonic() - started
    assert answers[0].status_code == 200
    assert {answer.status_code for answer in answers[1:]} == {401}
    # the first read, then at most one a second (docs/access.md)
    assert len(reads) <= 2 + int(elapsed), (len(reads), elapsed)
