"""`/v1/releases`: the API decides as the caller, with the same rules and 4xx answers that say
why. The app runs in this process over a real store and a real MLflow server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mlflow.tracking import MlflowClient

from modelcycle.access.identity import Identity, Role
from modelcycle.access.keys import create_api_key
from modelcycle.access.users import add_user
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.serving.app import build_services, create_app
from modelcycle.settings import Settings
from modelcycle.store import open_store
from tests.release.conftest import GATES_FAILED, GATES_PASSED, aliases, register_versions
from tests.serving.test_metrics_accuracy import NoRegistry
from tests.support.servers import MlflowServer

SERVICE_KEY = "service-key-5e1a"


@pytest.fixture
def settings(tmp_path: Path, mlflow_sqlite_server: MlflowServer) -> Settings:
    return Settings(
        home=tmp_path,
        environment="prod",
        api_keys=SERVICE_KEY,
        tracking_uri=mlflow_sqlite_server.tracking_uri,
    )


def _keys(settings: Settings) -> tuple[dict[str, str], dict[str, Identity]]:
    store = open_store(settings)
    try:
        with store.session() as session:
            people = {
                name: add_user(session=session, name=name, role=role)
                for name, role in (
                    ("vera", Role.VIEWER),
                    ("otto", Role.OPERATOR),
                    ("alice", Role.APPROVER),
                    ("root", Role.ADMIN),
                )
            }
            keys = {name: create_api_key(session=session, user=name) for name in people}
    finally:
        store.close()
    return keys, people


def _call(
    app: FastAPI, method: str, path: str, key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers = {"Authorization": f"Bearer {key}"}
            return await client.request(method, path, headers=headers, json=body)

    return asyncio.run(send())


def test_approvers_decide_over_http_and_everybody_else_is_told_why_not(
    settings: Settings, client: MlflowClient, model_name: str
) -> None:
    keys, people = _keys(settings)
    register_versions(client, model_name, 3)
    store = open_store(settings)
    try:
        releases = Releases(
            store=store,
            registry=ReleaseRegistry(client),
            environment="prod",
            auto_approve=False,
        )
        mine = releases.open(
            model=model_name, version="2", requested_by=people["otto"], gates=GATES_PASSED
        )
        failed = releases.open(
            model=model_name, version="3", requested_by=people["alice"], gates=GATES_FAILED
        )
    finally:
        store.close()
    app = create_app(settings, build_services(settings, source=NoRegistry()))

    listed = _call(app, "GET", f"/v1/releases?model={model_name}", keys["vera"])
    assert listed.status_code == 200
    assert [(r["version"], r["state"]) for r in listed.json()] == [
        ("3", "pending"),
        ("2", "superseded"),
    ]
    assert _call(app, "GET", "/v1/releases/999", keys["vera"]).status_code == 404

    viewer = _call(app, "POST", f"/v1/releases/{failed.id}/approve", keys["vera"], {})
    assert (viewer.status_code, viewer.json()["detail"]) == (
        403,
        "requires the approver role; vera is a viewer",
    )
    service = _call(app, "POST", f"/v1/releases/{failed.id}/approve", SERVICE_KEY, {})
    assert service.status_code == 403
    own = _call(app, "POST", f"/v1/releases/{failed.id}/approve", keys["alice"], {})
    assert own.status_code == 403 and "alice requested release" in own.json()["detail"]
    blocked = _call(app, "POST", f"/v1/releases/{failed.id}/approve", keys["root"], {})
    assert blocked.status_code == 403 and "failed gate(s) metric" in blocked.json()["detail"]
    superseded = _call(app, "POST", f"/v1/releases/{mine.id}/approve", keys["root"], {})
    assert superseded.status_code == 409 and "superseded" in superseded.json()["detail"]
    too_long = _call(
        app, "POST", f"/v1/releases/{failed.id}/reject", keys["alice"], {"comment": "x" * 2001}
    )
    assert too_long.status_code == 422 and "at most 2000" in too_long.json()["detail"]

    approved = _call(
        app,
        "POST",
        f"/v1/releases/{failed.id}/approve",
        keys["root"],
        {"comment": "known dip", "override_reason": "holiday traffic"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["champion_from"] == "1" and approved.json()["champion_to"] == "3"
    assert aliases(client, model_name) == {"champion": "3", "previous": "1"}
    again = _call(app, "POST", f"/v1/releases/{failed.id}/reject", keys["alice"], {})
    assert again.status_code == 409

    compared = _call(
        app, "GET", f"/v1/releases/compare?model={model_name}&a=1&b=3", keys["vera"]
    ).json()
    assert compared["b"]["aliases"] == ["champion"] and compared["b"]["release"]["state"] == (
        "approved"
    )

    rollback_path = f"/v1/releases/rollback/{model_name}"
    assert _call(app, "POST", rollback_path, keys["alice"], {}).status_code == 403
    rolled = _call(app, "POST", rollback_path, keys["root"], {"comment": "alerts"})
    assert rolled.status_code == 200, rolled.text
    assert aliases(client, model_name) == {"champion": "1"}
    shown = _call(app, "GET", f"/v1/releases/{failed.id}", keys["vera"]).json()
    assert shown["state"] == "rolled_back"
    assert [d["action"] for d in shown["decisions"]] == ["open", "approve", "rollback"]
    history = _call(app, "GET", f"/v1/releases/history?model={model_name}", keys["vera"])
    assert [d["actor"] for d in history.json()][-2:] == ["root", "root"]


def test_unknown_models_and_versions_are_404_and_malformed_ones_422(
    settings: Settings, client: MlflowClient, model_name: str
) -> None:
    keys, _people = _keys(settings)
    register_versions(client, model_name, 2)
    app = create_app(settings, build_services(settings, source=NoRegistry()))
    compare = "/v1/releases/compare?model={}&a={}&b={}"
    same = _call(app, "GET", compare.format(model_name, 1, 2), keys["vera"])
    assert same.status_code == 200, same.text
    # the same data as `release compare --json`: confusion matrices, evaluations of the same days
    assert {"confusion", "history"} <= set(same.json()) and same.json()["history"] == []
    assert _call(app, "GET", compare.format(model_name, 1, 9), keys["vera"]).status_code == 404
    assert _call(app, "GET", compare.format("no-such", 1, 2), keys["vera"]).status_code == 404
    assert _call(app, "GET", compare.format(model_name, "x", 1), keys["vera"]).status_code == 422
    assert _call(app, "POST", "/v1/releases/rollback/no-such", keys["root"], {}).status_code == 404
    assert _call(app, "GET", f"/v1/releases/{2**40}", keys["vera"]).status_code == 422
    assert _call(app, "GET", "/v1/releases?state=done", keys["vera"]).status_code == 422


def test_the_store_the_release_routes_open_is_closed_when_the_api_stops(
    settings: Settings,
) -> None:
    keys, _people = _keys(settings)
    app = create_app(settings, build_services(settings, source=NoRegistry()))

    async def serve_once() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
                answer = await api.get(
                    "/v1/releases", headers={"Authorization": f"Bearer {keys['vera']}"}
                )
            assert app.state.releases is not None
            return answer

    answer = asyncio.run(serve_once())
    assert (answer.status_code, answer.json()) == (200, [])
    assert app.state.releases is None
