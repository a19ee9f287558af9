"""Request id, body-size limit and request metrics, as one pure ASGI middleware.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`: the API answers thousands of requests a
second, and the latter adds a task and a stream per request.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import time
from collections.abc import Callable

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelcycle.serving.authentication import KeyDirectory, KeysUnavailableError
from modelcycle.serving.identity import IDENTITY_STATE
from modelcycle.serving.metrics import ApiMetrics
from modelcycle.serving.services import METRICS_PATH, api_key_matches, needs_api_key

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_FORM = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class BodyTooLargeError(HTTPException):
    """Raised while a chunked body is read; FastAPI turns an HTTPException into its answer."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"request body over {limit} bytes")


class _RequestIds:
    """New request ids: 32 hex digits like a uuid4's, a random prefix per process and a counter.
    As unique as uuid4 within and across processes, at a fraction of its cost per request (no
    system call, no UUID object): at thousands of requests a second that showed in profiles."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)  # a forked worker gets its own prefix

    def renew(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_NEW_IDS = _RequestIds()


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is well formed, else a new one."""
    for key, value in scope["headers"]:
        if key == REQUEST_ID_HEADER and _REQUEST_ID_FORM.match(value):
            return str(value.decode())
    return _NEW_IDS.new()


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _send_json(
    send: Send,
    status: int,
    detail: str,
    request_id: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER, request_id.encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ServingMiddleware:
    """Gives each request an id (echoed in `X-Request-ID` and in its log lines), refuses `/v1/`
    requests without a valid API key and `/metrics` without the metrics key when one is set
    (401), and bodies over the limit (413), and records count and latency by route, model and
    status. A `/v1/` request's caller is left in its state for the routes (serving/identity.py)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ApiMetrics,
        max_body_bytes: int,
        served_models: Callable[[], tuple[str, ...]],
        keys: KeyDirectory,
        metrics_key: bytes | None = None,
    ):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.served_models = served_models
        self.keys = keys
        self.metrics_keys = frozenset([metrics_key]) if metrics_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        limit = self.max_body_bytes
        length = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            refusal = await self._refusal(scope, length)
            if refusal is not None:
                status, detail, extra = refusal
                await _send_json(send, status, detail, request_id, extra=extra)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except BodyTooLargeError:
            if response_started:
                raise
            status = 413
            await _send_json(send, 413, f"request body over {limit} bytes", request_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            self._observe(scope, status, time.perf_counter() - started)

    async def _refusal(
        self, scope: Scope, length: int | None
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """A request answered before the app sees it: no valid key (401), keys that cannot be
        read (503), too big a body (413)."""
        path = scope["path"]
        authorization = _header(scope, b"authorization")
        if needs_api_key(path):
            try:
                identity = await self.keys.identity_for(authorization)
            except KeysUnavailableError as error:
                return 503, str(error), []
            if identity is None:
                detail = "missing or invalid API key (Authorization: Bearer <key>)"
                return 401, detail, [(b"www-authenticate", b"Bearer")]
            scope.setdefault("state", {})[IDENTITY_STATE] = identity
        if (
            path == METRICS_PATH
            and self.metrics_keys is not None
            and not api_key_matches(authorization, self.metrics_keys)
        ):
            detail = (
                "missing or invalid metrics key (Authorization: Bearer <MODELCYCLE_METRICS_KEY>)"
            )
            return 401, detail, [(b"www-authenticate", b"Bearer")]
        if length is not None and length > self.max_body_bytes:
            return 413, f"request body over {self.max_body_bytes} bytes", []
        return None

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        name = scope.get("path_params", {}).get("name", "")
        model = name if name in self.served_models() else ("" if not name else "unknown")
        self.metrics.observe(path, model, status, seconds)
        if status >= 500 and status != 503:  # 503 is a deliberate "not ready yet"
            log.error("request failed", route=path, status=status, seconds=round(seconds, 4))
