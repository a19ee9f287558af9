"""The prediction hot path: a plain, small, well-formed request answered before the framework.

At thousands of requests a second, the layers every request crosses in FastAPI (telemetry,
body limit, error and exception middleware, the exit stack, routing, the request object) cost
more than parsing and the inference together. A request to `POST /v1/models/{name}/predict`
that is small, carries a key that is already known, and is only `{"instances": [[numbers]]}`
of the right width is answered here, with the same answer, headers, request id, metrics,
prediction log and shadow hand-off as the route. Anything else — a bad key, a null, a string,
a boolean, a wrong width, too many rows, no model loaded, a large or chunked body — goes to the
full app, unchanged (its body replayed), where it is validated and answered as before: this path
never answers an error itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
import structlog
from numpy.typing import NDArray
from starlette.types import Message, Receive, Scope, Send

from modelcycle.serving.middleware import REQUEST_ID_HEADER, request_id_of
from modelcycle.serving.routes import PREDICT_ROUTE, record_answer
from modelcycle.serving.schemas import FLOAT32_MAX
from modelcycle.serving.services import Services
from modelcycle.serving.workload import INLINE_BODY_BYTES

ASGICall = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = "/v1/models/"
_SUFFIX = "/predict"
# The plain form's only string is its key, and no JSON number holds a `u` or an `f`: a body with
# other quotes, or a `u` (true, null, a \u escape) or an `f` (false), is the full path's to judge.
_QUOTES_OF_THE_KEY = 2


def predict_target(scope: Scope) -> str | None:
    """The model name of a `POST /v1/models/{name}/predict`, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return name if name and "/" not in name else None


def plain_matrix(raw: bytes, n_features: int, max_rows: int) -> NDArray[np.float32] | None:
    """The float32 matrix of a body that is exactly `{"instances": [[numbers]]}` with rows of
    `n_features` finite float32 values, at most `max_rows` of them; None for anything else."""
    # Byte scans (memchr) before parsing: cheaper than walking the parsed lists for booleans.
    if raw.count(b'"') != _QUOTES_OF_THE_KEY or b"u" in raw or b"f" in raw:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or len(body) != 1:
        return None
    rows = body.get("instances")
    if type(rows) is not list or not 0 < len(rows) <= max_rows:
        return None
    try:
        # Only numbers and lists are left; a known dtype converts without inferring one.
        values = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError):  # ragged rows, an object
        return None
    if values.ndim != 2 or values.shape[1] != n_features:
        return None
    if values.size and np.maximum.reduce(np.abs(values), axis=None) > FLOAT32_MAX:
        return None
    return values.astype(np.float32)


class HotPath:
    """Answers what it can of the predict route (see the module's docstring); hands the rest on."""

    def __init__(self, services: Services):
        self.services = services
        self.max_rows = services.settings.serving_max_rows

    async def __call__(
        self, name: str, scope: Scope, receive: Receive, send: Send, full_app: ASGICall
    ) -> None:
        started = time.perf_counter()
        svc = self.services
        length = authorization = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"authorization":
                authorization = value
        model = svc.manager.models.get(name)
        if (
            model is None
            or length is None
            or not length.isdigit()
            or int(length) > INLINE_BODY_BYTES
            or svc.keys.known(authorization) is None
        ):
            await full_app(scope, receive, send)
            return
        raw, message = await _read_body(receive)
        matrix = plain_matrix(raw, len(model.features), self.max_rows) if message is None else None
        if matrix is None:
            await full_app(scope, _replay(raw, message, receive), send)
            return
        try:
            scores: list[float] = model.predict(matrix).tolist()
        except Exception:  # noqa: BLE001 - the full app meets it again and answers it as always
            await full_app(scope, _replay(raw, None, receive), send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            answer = record_answer(svc, model, raw, scores, matrix, request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(answer)).encode()),
                        (b"content-type", b"application/json"),
                        (REQUEST_ID_HEADER, request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        svc.metrics.observe(PREDICT_ROUTE, name, 200, time.perf_counter() - started)


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The body, or what was read of it and the message that ended the reading early."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message  # a disconnect: the full app sees it too
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(raw: bytes, ended_by: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever came after it."""
    pending: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]
    if ended_by is not None:
        pending = [{"type": "http.request", "body": raw, "more_body": True}, ended_by]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
