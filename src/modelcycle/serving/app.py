"""Wiring the prediction API: services from settings, middleware, errors, and the poll loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from modelcycle.errors import DataNotFoundError, InvalidInputError, ModelcycleError, StorageError
from modelcycle.lake.fleet import device_ids
from modelcycle.registry.loading import RegistrySource, VersionSource
from modelcycle.serving.authentication import TASK_NAME as KEY_POLL
from modelcycle.serving.authentication import KeyDirectory
from modelcycle.serving.background import BackgroundTasks
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.docs import mount_offline_docs
from modelcycle.serving.fleet import close_fleet_sources, fleet_routes
from modelcycle.serving.hot_path import HotPath, predict_target
from modelcycle.serving.identity import identity_routes
from modelcycle.serving.inputs import RequestTooLargeError
from modelcycle.serving.manager import ModelManager, ModelNotReadyError, describe_error
from modelcycle.serving.metrics import ApiMetrics
from modelcycle.serving.middleware import ServingMiddleware
from modelcycle.serving.prediction_log import TASK_NAME as PREDICTION_LOG
from modelcycle.serving.prediction_log import PredictionLog
from modelcycle.serving.releases import close_releases, release_routes
from modelcycle.serving.routes import health, predictions
from modelcycle.serving.services import ServedAccuracy, Services, document_bearer_auth
from modelcycle.serving.shadow import TASK_NAME as SHADOW_SCORING
from modelcycle.serving.shadow import ShadowScorer
from modelcycle.serving.shadow_worker import LOG_TASK as SHADOW_LOG
from modelcycle.serving.shadow_worker import POLL_TASK as SHADOW_POLL
from modelcycle.serving.web import mount_dashboard
from modelcycle.serving.webhooks import RecentDeliveries, webhooks
from modelcycle.serving.workload import ServerBusyError, WorkSlots
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore, open_store

log = structlog.get_logger(__name__)


def _status_of(error: ModelcycleError) -> int:
    if isinstance(error, RequestTooLargeError):
        return 413
    if isinstance(error, InvalidInputError):
        return 422
    if isinstance(error, DataNotFoundError):
        return 404
    if isinstance(error, ModelNotReadyError | ServerBusyError):
        return 503
    return 500


def _validation_message(error: RequestValidationError) -> str:
    """The first problem as one line that names the field, e.g. `instances[0][3]: …`."""
    problem = error.errors()[0]
    path = ""
    for part in problem.get("loc", ())[1:]:  # drop "body" / "path"
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{path or 'body'}: {problem.get('msg', 'invalid')}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelcycleError)
    async def domain_error(request: Request, error: ModelcycleError) -> JSONResponse:
        headers = None
        if isinstance(error, ServerBusyError):
            headers = {"Retry-After": str(error.retry_after_seconds)}
        return JSONResponse({"detail": str(error)}, status_code=_status_of(error), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        message = _validation_message(error)
        problems = [
            {"loc": list(p.get("loc", ())), "msg": p.get("msg", ""), "type": p.get("type", "")}
            for p in error.errors()[:10]
        ]
        return JSONResponse({"detail": problems, "message": message}, status_code=422)


def _fleet(raw: ObjectStore | None) -> frozenset[str] | None:
    """Known device ids, or None (any id accepted) when no fleet register can be read."""
    if raw is None:
        return None
    try:
        return device_ids(raw)
    except (DataNotFoundError, InvalidInputError, StorageError) as error:
        log.warning("device ids are not checked: no fleet register", error=str(error))
        return None


class ServingApp(FastAPI):
    """The API, with the prediction hot path in front of the framework (serving/hot_path.py)."""

    hot_path: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot_path is not None and (name := predict_target(scope)) is not None:
            await self.hot_path(name, scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


REGISTRY_POLL = "registry_poll"
ACCURACY_POLL = "accuracy_poll"


def _start_background(services: Services, interval: float) -> None:
    """The registry poll (model reloads) and the accuracy poll (`/metrics`), each its own loop: a
    slow monitoring store (the first open may migrate it, an unreachable database waits for its
    connect timeout) must not hold up the model reloads. Then the prediction-log writer."""
    services.background.start(REGISTRY_POLL, services.manager.poll, interval)
    services.background.start(ACCURACY_POLL, services.accuracy.refresh, interval)
    services.background.start(
        KEY_POLL, services.keys.refresh, services.settings.serving_key_refresh_seconds
    )
    services.prediction_log.start()
    if services.shadow is not None:
        services.shadow.start()  # its worker process polls the shadow alias itself


def _stop_shadow(services: Services) -> None:
    if services.shadow is not None:
        services.shadow.stop()


async def _teardown(services: Services) -> None:
    """Stop the loops, flush the prediction log, close the store: each step runs whatever the
    one before did, so the prediction log is flushed even when another step fails."""
    steps: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
        ("stop background tasks", services.background.stop),
        ("finish shadow scoring", lambda: asyncio.to_thread(_stop_shadow, services)),
        ("flush the prediction log", lambda: asyncio.to_thread(services.prediction_log.stop)),
        ("close the monitoring store", lambda: asyncio.to_thread(services.accuracy.close)),
        ("close the key store", lambda: asyncio.to_thread(services.keys.close)),
    )
    for what, step in steps:
        try:
            await step()
        except Exception as error:  # broad on purpose: shutdown must reach the next step
            log.error(f"shutdown: could not {what}", error=describe_error(error), exc_info=error)


def build_services(
    settings: Settings,
    *,
    source: VersionSource | None = None,
    lake: ObjectStore | None = None,
    raw: ObjectStore | None = None,
    open_allowed: bool = True,
) -> Services:
    """`open_allowed=False` keeps the API closed even with no key anywhere (see serve)."""
    source = source or RegistrySource(settings)
    cache = ArtifactCache(settings.resolved_serving_cache_dir)
    manager = ModelManager(
        names=settings.model_names, alias=settings.serving_alias, source=source, cache=cache
    )
    accuracy = ServedAccuracy(settings, manager.names)
    background = BackgroundTasks()
    for name in (REGISTRY_POLL, ACCURACY_POLL):
        background.track(name)
    api_keys = frozenset(key.encode() for key in settings.api_key_set)
    prediction_log = PredictionLog(
        lake,
        flush_seconds=settings.serving_log_flush_seconds,
        health=background.track(PREDICTION_LOG) if lake is not None else None,
    )
    shadow = _shadow_scorer(settings, background)
    return Services(
        settings=settings,
        manager=manager,
        metrics=ApiMetrics(
            manager,
            accuracy_source=accuracy.current,
            background=background,
            prediction_log=prediction_log,
            shadow=shadow,
        ),
        accuracy=accuracy,
        prediction_log=prediction_log,
        devices=_fleet(raw),
        api_keys=api_keys,
        background=background,
        keys=KeyDirectory(
            settings,
            configured=api_keys,
            health=background.track(KEY_POLL),
            open_allowed=open_allowed,
        ),
        shadow=shadow,
    )


def _shadow_scorer(settings: Settings, background: BackgroundTasks) -> ShadowScorer | None:
    """The challenger behind `serving_shadow_alias`, scored in a worker process with a shadow
    log of its own (serving/shadow.py); None when shadow scoring is off."""
    if not settings.serving_shadow:
        return None
    return ShadowScorer(
        settings,
        health=background.track(SHADOW_SCORING),
        poll_health=background.track(SHADOW_POLL),
        log_health=background.track(SHADOW_LOG),
    )


def stores_from(settings: Settings) -> tuple[ObjectStore, ObjectStore]:
    options = {
        "s3_endpoint_url": settings.s3_endpoint_url,
        "gcs_endpoint_url": settings.gcs_endpoint_url,
    }
    return (
        open_store(settings.resolved_lake_url, **options),
        open_store(settings.resolved_raw_url, **options),
    )


def create_app(
    settings: Settings, svc: Services | None = None, *, open_allowed: bool = True
) -> FastAPI:
    """The API for these settings; `svc` lets a caller wire its own sources (tests, benchmarks)."""
    if svc is None:
        lake, raw = stores_from(settings)
        svc = build_services(settings, lake=lake, raw=raw, open_allowed=open_allowed)
    services = svc

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(services.manager.start_from_cache)  # never raises
        _start_background(services, settings.serving_poll_seconds)
        log.info(
            "serving",
            models=list(services.manager.names),
            alias=services.manager.alias,
            auth=services.keys.mode,
        )
        try:
            yield
        finally:
            await _teardown(services)
            await asyncio.to_thread(close_releases, app)
            await asyncio.to_thread(close_fleet_sources, app.state)

    app = ServingApp(
        title="modelcycle prediction API",
        summary="Predictions from verified model versions, swapped in without a restart.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.hot_path = HotPath(services)
    app.state.background_tasks = set()
    app.state.webhook_deliveries = RecentDeliveries()
    app.state.work = WorkSlots(
        settings.serving_max_concurrent,
        settings.serving_busy_wait_seconds,
        registry=services.metrics.registry,
    )
    app.include_router(health)
    app.include_router(predictions)
    app.include_router(webhooks)
    app.include_router(identity_routes)
    app.include_router(release_routes)
    app.include_router(fleet_routes)
    mount_offline_docs(app)
    _install_error_handlers(app)
    app.add_middleware(
        ServingMiddleware,
        metrics=services.metrics,
        max_body_bytes=settings.serving_max_body_bytes,
        served_models=lambda: services.manager.names,
        keys=services.keys,
        metrics_key=settings.metrics_key.get_secret_value().encode()
        if settings.metrics_key
        else None,
    )
    document_bearer_auth(app)
    mount_dashboard(app, settings)
    return app
