"""The true floor of the serving benchmark: a raw ASGI app, orjson and ONNX Runtime, nothing else.

Only what answering a prediction must do: read the body, parse it with a fast JSON parser, turn
it into a float32 matrix (null as NaN, a missing feature), run the ONNX session and write the
scores back. No framework, validation, auth, metrics or logging, so modelcycle's times divided by
this one's are the price of everything modelcycle adds. bench/serving.py runs it with uvicorn and
passes the model file in BARE_MODEL_PATH.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(
    os.environ["BARE_MODEL_PATH"], options, providers=["CPUExecutionProvider"]
)
input_name = session.get_inputs()[0].name
JSON_HEADERS = [(b"content-type", b"application/json")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": payload})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/ping":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    if scope["path"] != "/predict" or scope["method"] != "POST":
        await _answer(send, 404, b'{"detail":"not found"}')
        return
    instances = orjson.loads(await _body(receive))["instances"]
    rows = np.array(instances, dtype=np.float32)  # None becomes NaN
    (scores,) = session.run(["score"], {input_name: rows})
    await _answer(send, 200, orjson.dumps({"predictions": scores.tolist()}))
