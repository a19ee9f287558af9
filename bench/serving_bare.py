"""The near-limit anchor of the serving benchmark: FastAPI + ONNX Runtime and nothing else.

What a data scientist would write in twenty lines: no auth, metrics, logging or checks beyond
FastAPI's parsing. bench/serving.py runs it with uvicorn and passes the model file in
BARE_MODEL_PATH; reading it at import is the point of a bare handler.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(
    os.environ["BARE_MODEL_PATH"], options, providers=["CPUExecutionProvider"]
)
input_name = session.get_inputs()[0].name
app = FastAPI()


class Instances(BaseModel):
    instances: list[list[float | None]]  # null: a missing feature, as the lake has them


class Predictions(BaseModel):
    predictions: list[float]


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(body: Instances) -> Predictions:
    rows = np.asarray(body.instances, dtype=np.float32)
    (scores,) = session.run(["score"], {input_name: rows})
    return Predictions(predictions=scores.tolist())
