"""What the routes and metrics depend on, built once per app, and the API-key rule."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI, Request

from modelcycle.errors import ModelcycleError
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.serving.authentication import KeyDirectory
from modelcycle.serving.background import BackgroundTasks
from modelcycle.serving.manager import ModelManager, describe_error
from modelcycle.serving.metrics import ACCURACY_WINDOW_DAYS, ApiMetrics
from modelcycle.serving.prediction_log import PredictionLog
from modelcycle.serving.shadow import ShadowScorer
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from modelcycle.store import Store

log = structlog.get_logger(__name__)


class ServedAccuracy:
    """The served models' 7-day accuracy from the monitoring store, kept for `/metrics`.

    The poll loop calls `refresh`; a scrape reads `current`, never the database. When the store
    cannot be read (unreachable, schema out of date) the last values stay, the cause is logged
    once, and the next poll tries again; the API serves predictions either way.
    """

    def __init__(self, settings: Settings, names: Sequence[str]):
        self.settings = settings
        self.names = tuple(names)
        self._values: Mapping[str, float] = MappingProxyType({})
        self._store: Store | None = None
        self._failing: str | None = None

    def current(self) -> Mapping[str, float]:
        return self._values

    def refresh(self) -> str | None:
        """Re-read the averages; why they could not be read, or None. Never raises: a store bug
        must not stop its poll loop, which reports the returned cause in the API's status."""
        try:
            values = self._read()
        except ModelcycleError as error:
            return self._warn_once(str(error))
        except Exception as error:  # noqa: BLE001 - a store bug must not stop the poll loop
            return self._warn_once(describe_error(error), trace=error)
        self._values = MappingProxyType(dict(values))
        if self._failing is not None:
            log.info("accuracy gauge refreshed again", models=sorted(values))
            self._failing = None
        return None

    def _read(self) -> Mapping[str, float]:
        # Imported here, like the store, to keep the API's start fast.
        with FIRST_USE_IMPORTS:
            from modelcycle.store import open_store
            from modelcycle.store.evaluations import accuracy_averages

        if self._store is None:
            self._store = open_store(self.settings)
        return accuracy_averages(self._store, self.names, window_days=ACCURACY_WINDOW_DAYS)

    def _warn_once(self, cause: str, *, trace: Exception | None = None) -> str:
        if cause != self._failing:
            details: dict[str, Any] = {"exc_info": trace} if trace is not None else {}
            log.warning("accuracy gauge not refreshed", error=cause, **details)
            self._failing = cause
        return cause

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@dataclass(frozen=True)
class Services:
    settings: Settings
    manager: ModelManager
    metrics: ApiMetrics
    accuracy: ServedAccuracy
    prediction_log: PredictionLog
    devices: frozenset[str] | None
    api_keys: frozenset[bytes]
    background: BackgroundTasks
    keys: KeyDirectory  # who a request's key stands for: configured keys and users' keys
    shadow: ShadowScorer | None = None  # MODELCYCLE_SERVING_SHADOW


async def services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread, per request."""
    svc: Services = request.app.state.services
    return svc


PROTECTED_PREFIX = "/v1/"
UNPROTECTED_PREFIX = "/v1/webhooks/"  # signed by MLflow instead
METRICS_PATH = "/metrics"  # behind MODELCYCLE_METRICS_KEY when that is set


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
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "a user's key (`modelcycle users key create`) or one of "
                "MODELCYCLE_API_KEYS",
            }
        }
        for path, operations in spec.get("paths", {}).items():
            if needs_api_key(path):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
