"""Push reloads: the MLflow registry's webhook for "an alias was set on a model version".

MLflow signs `<delivery id>.<unix timestamp>.<body>` with HMAC-SHA256 and the webhook's secret
and sends `X-MLflow-Signature: v1,<base64>`. A delivery older than five minutes, or one already
seen, is refused, so a captured request cannot be replayed to force reloads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections import deque
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from modelcycle.serving.manager import ModelManager
from modelcycle.serving.releases import forget_registry_reads
from modelcycle.serving.schemas import ErrorPublic, WebhookAccepted
from modelcycle.serving.services import Services, services
from modelcycle.serving.shadow import ShadowScorer

log = structlog.get_logger(__name__)

SIGNATURE_VERSION = "v1"
_UNIX_TIME = re.compile(r"[0-9]{1,12}")
MAX_AGE_SECONDS = 300
ALIAS_ENTITY = "model_version_alias"
ALIAS_CREATED = "created"


class InvalidSignatureError(Exception):
    pass


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify_signature(
    secret: str, *, delivery_id: str, timestamp: str, body: bytes, signature: str, now: float
) -> None:
    """Raises InvalidSignatureError for anything but a fresh, correctly signed delivery.

    The headers are the caller's, unauthenticated: only ASCII digits (at most 12, a Unix time)
    reach int(), and the signature is compared as bytes, so no header value can raise anything
    else (`"²".isdigit()` is true, int() of 5,000 digits and compare_digest of "é" raise).
    """
    if not _UNIX_TIME.fullmatch(timestamp) or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise InvalidSignatureError("timestamp missing or more than 5 minutes off")
    expected = sign(secret, delivery_id, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise InvalidSignatureError("signature does not match")


class AliasData(BaseModel):
    name: str
    alias: str
    version: str


class WebhookEvent(BaseModel):
    entity: str
    action: str
    data: dict[str, object]


class RecentDeliveries:
    """Delivery ids seen lately (bounded), to refuse a replayed delivery."""

    def __init__(self, size: int = 1024):
        self._order: deque[str] = deque(maxlen=size)
        self._seen: set[str] = set()

    def add(self, delivery_id: str) -> bool:
        if delivery_id in self._seen:
            return False
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(delivery_id)
        self._seen.add(delivery_id)
        return True


def _follower(svc: Services, alias: str) -> ModelManager | ShadowScorer | None:
    """What follows `alias`: the served models, or shadow scoring (its worker reloads)."""
    if alias == svc.manager.alias:
        return svc.manager
    if svc.shadow is not None and alias == svc.shadow.alias:
        return svc.shadow
    return None


webhooks = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
ServicesDep = Annotated[Services, Depends(services)]


@webhooks.post(
    "/mlflow",
    status_code=202,
    response_model=WebhookAccepted,
    responses={401: {"model": ErrorPublic}, 404: {"model": ErrorPublic}},
)
async def mlflow_webhook(
    request: Request,
    svc: ServicesDep,
    signature: Annotated[str, Header(alias="X-MLflow-Signature")] = "",
    timestamp: Annotated[str, Header(alias="X-MLflow-Timestamp")] = "",
    delivery_id: Annotated[str, Header(alias="X-MLflow-Delivery-Id")] = "",
) -> JSONResponse:
    """MLflow registry webhook: an alias set on a served model reloads that model now."""
    secret = svc.settings.webhook_secret
    if secret is None:
        raise HTTPException(404, "webhooks are off: MODELCYCLE_WEBHOOK_SECRET is not set")
    # The signature covers the exact bytes sent, so this route reads the raw body.
    body = await request.body()
    try:
        verify_signature(
            secret.get_secret_value(),
            delivery_id=delivery_id,
            timestamp=timestamp,
            body=body,
            signature=signature,
            now=time.time(),
        )
    except InvalidSignatureError as error:
        log.warning("refused webhook", reason=str(error))
        raise HTTPException(401, f"webhook refused: {error}") from error
    if not request.app.state.webhook_deliveries.add(delivery_id):
        raise HTTPException(401, "webhook refused: delivery already received")
    try:
        event = WebhookEvent.model_validate_json(body)
        alias = AliasData.model_validate(event.data)
    except ValidationError:
        return JSONResponse({"status": "ignored"}, status_code=202)
    relevant = (event.entity, event.action) == (ALIAS_ENTITY, ALIAS_CREATED)
    forget_registry_reads(request.app)  # any alias moved: the dashboard reads the registry anew
    manager = _follower(svc, alias.alias)
    if not relevant or manager is None or alias.name not in manager.names:
        return JSONResponse({"status": "ignored"}, status_code=202)
    log.info("webhook: alias moved", model=alias.name, version=alias.version)
    task = asyncio.create_task(asyncio.to_thread(manager.refresh, alias.name))
    request.app.state.background_tasks.add(task)
    task.add_done_callback(request.app.state.background_tasks.discard)
    return JSONResponse({"status": "reloading", "model": alias.name}, status_code=202)
