"""What the routes depend on, built once per app, and the API-key check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


_bearer = HTTPBearer(auto_error=False, description="An API key from MODELCYCLE_API_KEYS.")


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the bearer token is one of the configured keys (none configured: open)."""
    keys = services(request).api_keys
    if not keys:
        return
    given = credentials.credentials.encode() if credentials else b""
    # compare_digest against every key: the time taken does not tell which key was close.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    if not matched:
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
