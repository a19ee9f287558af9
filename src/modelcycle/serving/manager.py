"""Which version of each model is served, and how a new one replaces it.

A refresh resolves the alias, downloads, verifies, opens and warms the new version beside the old
one, then swaps a single reference. A request holds the `LoadedModel` it started with, so requests
in flight finish on their model. Any failure keeps the last good model and is recorded.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

import structlog

from modelcycle.errors import DataNotFoundError, ModelcycleError, ModelValidationError
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.model import LoadedModel, load_verified_model
from modelcycle.serving.registry_source import VersionSource

log = structlog.get_logger(__name__)

Outcome = Literal["loaded", "unchanged", "failed", "refused"]


class UnknownModelError(DataNotFoundError):
    """The API does not serve a model of that name."""


class ModelNotReadyError(ModelcycleError):
    """The model is served, but no verified version has been loaded yet."""


@dataclass
class ModelStatus:
    """The last thing that happened to one served model, for `/v1/models` and `/metrics`."""

    name: str
    last_checked: datetime | None = None
    last_error: str | None = None
    reloads: Counter[str] = field(default_factory=Counter)


def _now() -> datetime:
    return datetime.now(UTC)


class ModelManager:
    """Holds the served version of each model; refreshes are serialised per model."""

    def __init__(
        self,
        *,
        names: tuple[str, ...],
        alias: str,
        source: VersionSource,
        cache: ArtifactCache,
        clock: Callable[[], datetime] = _now,
    ):
        self.names = names
        self.alias = alias
        self.source = source
        self.cache = cache
        self.clock = clock
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self._swap_lock = threading.Lock()
        self._refresh_locks = {name: threading.Lock() for name in names}
        self.status = {name: ModelStatus(name) for name in names}

    @property
    def models(self) -> Mapping[str, LoadedModel]:
        return self._models

    def get(self, name: str) -> LoadedModel:
        """The model a request should use, read once: a later swap does not affect it."""
        model = self._models.get(name)
        if model is not None:
            return model
        if name not in self.status:
            raise UnknownModelError(
                f"model {name!r} is not served; served: {', '.join(self.names)}"
            )
        raise ModelNotReadyError(f"model {name!r} has no verified version loaded yet")

    @property
    def ready(self) -> bool:
        return all(name in self._models for name in self.names)

    def _swap(self, model: LoadedModel) -> None:
        with self._swap_lock:
            self._models = MappingProxyType({**self._models, model.record.name: model})

    def start_from_cache(self) -> None:
        """Serve the last verified versions at once; the first poll then asks the registry."""
        for name in self.names:
            if name not in self._models:
                self._load_from_cache(name)

    def refresh_all(self) -> dict[str, Outcome]:
        return {name: self.refresh(name) for name in self.names}

    def refresh(self, name: str) -> Outcome:
        """Bring `name` to the version its alias points at; never raises for a failed reload."""
        lock = self._refresh_locks.get(name)
        if lock is None:
            raise UnknownModelError(f"model {name!r} is not served")
        with lock:
            outcome = self._refresh_locked(name)
            self.status[name].reloads[outcome] += 1
        return outcome

    def _refresh_locked(self, name: str) -> Outcome:
        status = self.status[name]
        status.last_checked = self.clock()
        bound = log.bind(model=name, alias=self.alias)
        try:
            record = self.source.resolve(name, self.alias)
            current = self._models.get(name)
            if current is not None and current.record == record:
                status.last_error = None
                return "unchanged"
            data = self.source.fetch(record)
            model = load_verified_model(record, data, source="registry", now=self.clock())
        except ModelValidationError as error:
            status.last_error = str(error)
            bound.error("refused model version", error=str(error))
            return "refused"
        except ModelcycleError as error:
            status.last_error = str(error)
            bound.warning("model refresh failed; keeping the loaded version", error=str(error))
            return "failed"
        self.cache.save(record, data)
        self._swap(model)
        status.last_error = None
        bound.info("serving new model version", version=record.version, sha256=record.sha256)
        return "loaded"

    def _load_from_cache(self, name: str) -> None:
        cached = self.cache.load(name, self.alias)
        if cached is None:
            log.warning("no cached version to fall back on", model=name)
            return
        record, data = cached
        try:
            model = load_verified_model(record, data, source="cache", now=self.clock())
        except ModelValidationError as error:
            self.status[name].reloads["refused"] += 1
            log.error("refused cached model version", model=name, error=str(error))
            return
        self._swap(model)
        log.info(
            "serving cached version until the registry answers", model=name, version=record.version
        )

    def describe(self, name: str) -> tuple[LoadedModel | None, ModelStatus]:
        return self._models.get(name), self.status[name]
