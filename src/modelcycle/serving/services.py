"""What the routes depend on, built once per app, and the API-key rule."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from modelcycle.serving.manager import ModelManager
from modelcycle.serving.metrics import ApiMetrics
from modelcycle.serving.prediction_log import PredictionLog
from modelcycle.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    manager: ModelManager
    metrics: ApiMetrics
    prediction_log: PredictionLog
    devices: frozenset[str] | None
    api_keys: frozenset[bytes]


async def services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread, per request."""
    svc: Services = request.app.state.services
    return svc


PROTECTED_PREFIX = "/v1/"
UNPROTECTED_PREFIX = "/v1/webhooks/"  # signed by MLflow instead


def needs_api_key(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIX) and not path.startswith(UNPROTECTED_PREFIX)


def api_key_matches(authorization: bytes | None, keys: frozenset[bytes]) -> bool:
    """True for `Bearer <one of the keys>`, or for anything when no keys are configured."""
    if not keys:
        return True
    scheme, _, given = (authorization or b"").partition(b" ")
    # compare_digest against every key: the time taken does not tell which key was close.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.strip(), key)
    return matched and scheme.lower() == b"bearer"


def document_bearer_auth(app: FastAPI) -> None:
    """The key is checked in the ASGI middleware (a per-request dependency costs throughput);
    this puts the same rule into the OpenAPI spec, so /docs and clients know about it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "MODELCYCLE_API_KEYS"}
        }
        for path, operations in spec.get("paths", {}).items():
            if needs_api_key(path):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
