"""The API's routes: parse, call the serving core, format. No model logic lives here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelcycle.errors import DataNotFoundError
from modelcycle.registry.loading import LoadedModel
from modelcycle.serving.prediction_log import PredictionBatch
from modelcycle.serving.schemas import (
    DevicePrediction,
    DeviceReadings,
    ErrorPublic,
    Health,
    ModelPublic,
    ModelScores,
    ModelsPublic,
    PredictRequest,
    PredictResponse,
    json_body_spec,
)
from modelcycle.serving.scoring import score_device, score_rows_keeping_matrix
from modelcycle.serving.services import Services, services
from modelcycle.serving.shadow_jobs import ChampionAnswer, ShadowJob
from modelcycle.serving.status import (
    prediction_log_public,
    readiness,
    shadow_public,
    tasks_public,
)
from modelcycle.serving.workload import WorkSlots, is_small

ServicesDep = Annotated[Services, Depends(services)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong API key."},
    404: {"model": ErrorPublic, "description": "Unknown model or device."},
    413: {"model": ErrorPublic, "description": "Too many rows or values, or too large a body."},
    503: {
        "model": ErrorPublic,
        "description": "No verified model version loaded yet, or busy (see `Retry-After`).",
    },
}

health = APIRouter(tags=["health"])
predictions = APIRouter(prefix="/v1", tags=["predictions"])


@health.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@health.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(svc: ServicesDep) -> Response:
    """200 `ready` (or `degraded`, with `problems`) while every served model has a verified
    version and every background task runs; else 503 `not ready`."""
    state = readiness(svc)
    return JSONResponse(state.body().model_dump(), status_code=state.status_code)


@health.get("/metrics", response_class=Response, responses={401: {"model": ErrorPublic}})
async def metrics(svc: ServicesDep) -> Response:
    """Prometheus metrics (`Authorization: Bearer <MODELCYCLE_METRICS_KEY>` when that is set)."""
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


PREDICT_ROUTE = "/v1/models/{name}/predict"


@predictions.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    responses={**ERRORS, 422: {"description": "A value, row length or feature name is wrong."}},
    openapi_extra=json_body_spec(PredictRequest),
)
async def predict(name: str, request: Request) -> Response:
    """Scores for feature vectors from the model version behind the served alias."""
    # The hot path: no dependency injection, and the body goes straight from bytes to the
    # schema in pydantic-core (FastAPI's json.loads first costs more than the inference).
    svc: Services = request.app.state.services
    model = svc.manager.get(name)
    max_rows = svc.settings.serving_max_rows
    raw = await request.body()
    if is_small(request.headers.get("content-length")):
        scores, matrix = score_rows_keeping_matrix(raw, model, max_rows=max_rows)
    else:
        work: WorkSlots = request.app.state.work
        async with work.slot():
            scores, matrix = await work.run(
                score_rows_keeping_matrix, raw, model, max_rows=max_rows
            )
    request_id = request.scope["state"].get("request_id")
    answer = record_answer(svc, model, raw, scores, matrix, request_id)
    return Response(answer, media_type="application/json")


def record_answer(
    svc: Services,
    model: LoadedModel,
    raw: bytes,
    scores: list[float],
    matrix: NDArray[np.float32],
    request_id: str | None,
) -> bytes:
    """The answer's body, once the prediction log and shadow scoring have been handed it
    (the route and serving/hot_path.py answer alike)."""
    record = model.record
    predicted_at = datetime.now(UTC)
    svc.prediction_log.record(
        PredictionBatch(
            predicted_at=predicted_at,
            request_id=request_id,
            model=record.name,
            version=record.version,
            scores=scores,
        )
    )
    if svc.shadow is not None:
        champion = ChampionAnswer(record.name, record.version, scores)
        job = ShadowJob(
            raw, (champion,), request_id, predicted_at, matrix=matrix, features=model.features
        )
        svc.shadow.submit(job)
    answer = {
        "model": record.name,
        "version": record.version,
        "alias": record.alias,
        "predictions": scores,
    }
    return orjson.dumps(answer)


@predictions.post(
    "/devices/{device_id}/predict",
    response_model=DevicePrediction,
    responses={**ERRORS, 422: {"description": "A timestamp, sensor or value is wrong."}},
    openapi_extra=json_body_spec(DeviceReadings),
)
async def predict_device(device_id: str, request: Request, svc: ServicesDep) -> DevicePrediction:
    """Hourly window features from raw readings (the training code), scored by every model."""
    if svc.devices is not None and device_id not in svc.devices:
        raise DataNotFoundError(f"device {device_id!r} is not in the fleet register")
    models = [svc.manager.get(name) for name in svc.manager.names]
    work: WorkSlots = request.app.state.work
    raw = await request.body()
    async with work.slot():  # features and two models: always heavy enough for a thread
        scored = await work.run(
            score_device, raw, device_id, models, max_rows=svc.settings.serving_max_rows
        )
    answers: list[ModelScores] = []
    predicted_at = datetime.now(UTC)
    request_id = request.scope["state"].get("request_id")
    for model, scores in scored.scores:
        answers.append(
            ModelScores(model=model.record.name, version=model.record.version, predictions=scores)
        )
        svc.prediction_log.record(
            PredictionBatch(
                predicted_at=predicted_at,
                request_id=request_id,
                model=model.record.name,
                version=model.record.version,
                scores=scores,
                device_id=device_id,
                windows=scored.windows,
            )
        )
    if svc.shadow is not None:
        champions = tuple(ChampionAnswer(a.model, a.version, a.predictions) for a in answers)
        svc.shadow.submit(
            ShadowJob(raw, champions, request_id, predicted_at, device_id, scored.windows)
        )
    # The lake's times are naive UTC; the answer says so (`…Z`), as an OpenAPI date-time must.
    windows = [window.replace(tzinfo=UTC) for window in scored.windows]
    return DevicePrediction(device_id=device_id, windows=windows, models=answers)


@predictions.get("/models", response_model=ModelsPublic, responses={401: ERRORS[401]})
async def list_models(svc: ServicesDep) -> ModelsPublic:
    """What is served: version, hash, features, the last reload's outcome, and the health of the
    background tasks (registry poll, accuracy poll, prediction log)."""
    entries = []
    now = svc.manager.clock()
    for name in svc.manager.names:
        model, status = svc.manager.describe(name)
        record = model.record if model else None
        entries.append(
            ModelPublic(
                name=name,
                alias=svc.manager.alias,
                version=record.version if record else None,
                loaded_at=model.loaded_at if model else None,
                sha256=record.sha256 if record else None,
                run_id=record.run_id if record else None,
                trained_at=record.trained_at if record else None,
                age_hours=round((now - record.trained_at).total_seconds() / 3600, 2)
                if record
                else None,
                source=model.source if model else None,
                features=list(model.features) if model else [],
                last_checked=status.last_checked,
                last_error=status.last_error,
                reloads=dict(status.reloads),
                cache_error=status.cache_error,
            )
        )
    return ModelsPublic(
        models=entries,
        tasks=tasks_public(svc.background),
        prediction_log=prediction_log_public(svc.prediction_log),
        shadow=shadow_public(svc.shadow, svc.manager),
    )
