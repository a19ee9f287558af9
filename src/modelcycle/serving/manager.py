"""Which version of each model is served, and how a new one replaces it.

A refresh resolves the alias, downloads, verifies, opens and warms the new version beside the old
one, then swaps a single reference. A request holds the `LoadedModel` it started with, so requests
in flight finish on their model. Any failure keeps the last good model and is recorded; a refresh
never raises, so the poll loop and the webhook keep following the registry whatever goes wrong.
The local cache comes second: a version that was verified is served even when it cannot be
cached, and an unreadable cache entry is treated as missing.
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
from modelcycle.registry.loading import (
    LoadedModel,
    VersionRecord,
    VersionSource,
    load_verified_model,
)
from modelcycle.serving.cache import ArtifactCache

log = structlog.get_logger(__name__)

Outcome = Literal["loaded", "unchanged", "failed", "refused", "absent"]
CacheOperation = Literal["read", "write", "prune"]
_CACHE_FAILURE: dict[CacheOperation, str] = {
    "read": "serving cache entry unreadable; treating it as missing",
    "write": "serving cache write failed; serving the new version uncached",
    "prune": "serving cache clean-up of old versions failed",
}


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
    cache_error: str | None = None
    cache_errors: Counter[str] = field(default_factory=Counter)


def describe_error(error: BaseException) -> str:
    """One line for status fields: the message of a domain error, else type and first line."""
    if isinstance(error, ModelcycleError):
        return str(error)
    first_line = next(iter(str(error).splitlines()), "")
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


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
        optional: bool = False,
    ):
        """`optional`: the alias may be unset (shadow scoring's challenger); when no version has
        it, the model is dropped and the outcome is `absent`, not a failure."""
        self.names = names
        self.optional = optional
        self.alias = alias
        self.source = source
        self.cache = cache
        self.clock = clock
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self._swap_lock = threading.Lock()
        self._refresh_locks = {name: threading.Lock() for name in names}
        self.status = {name: ModelStatus(name) for name in names}
        # The served version of a model whose cache write failed: (record, bytes, previous version).
        self._uncached: dict[str, tuple[VersionRecord, bytes, str | None]] = {}

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

    def poll(self) -> str | None:
        """One poll round: refresh every model; why it could not follow the registry, or None.

        A refused version is not a failed poll: the registry was read, the version was judged.
        """
        outcomes = self.refresh_all()
        failed = [name for name, outcome in outcomes.items() if outcome == "failed"]
        return "; ".join(f"{name}: {self.status[name].last_error}" for name in failed) or None

    def refresh(self, name: str) -> Outcome:
        """Bring `name` to the version its alias points at; never raises for a failed reload."""
        lock = self._refresh_locks.get(name)
        if lock is None:
            raise UnknownModelError(f"model {name!r} is not served")
        with lock:
            outcome = self._refresh_locked(name)
            if outcome != "loaded":  # a load is counted as it becomes visible (_refresh_locked)
                self.status[name].reloads[outcome] += 1
        return outcome

    def _refresh_locked(self, name: str) -> Outcome:
        status = self.status[name]
        status.last_checked = self.clock()
        bound = log.bind(model=name, alias=self.alias)
        try:
            try:
                record = self.source.resolve(name, self.alias)
            except DataNotFoundError:
                if not self.optional:
                    raise
                return self._absent(name)
            current = self._models.get(name)
            if current is not None and current.record == record:
                status.last_error = None
                self._retry_cache(name)
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
        except Exception as error:  # noqa: BLE001 - a bug or a library's own error type must not
            # stop the API following the registry: logged with its traceback, counted as failed.
            status.last_error = describe_error(error)
            bound.error(
                "model refresh failed unexpectedly; keeping the loaded version",
                error=status.last_error,
                exc_info=error,
            )
            return "failed"
        # Counted before the swap: a client answered by the new version then finds the reload
        # in /metrics, even while the version is still being written to the cache below.
        status.reloads["loaded"] += 1
        self._swap(model)
        bound.info("serving new model version", version=record.version, sha256=record.sha256)
        status.last_error = None
        previous = current.record.version if current is not None else None
        self._cache_served(record, data, previous)
        return "loaded"

    def _absent(self, name: str) -> Outcome:
        """No version has the (optional) alias any more: stop holding the one that had it."""
        self.status[name].last_error = None
        if name in self._models:
            with self._swap_lock:
                self._models = MappingProxyType(
                    {key: model for key, model in self._models.items() if key != name}
                )
            log.info("alias unset; model dropped", model=name, alias=self.alias)
        return "absent"

    def _cache_served(self, record: VersionRecord, data: bytes, previous: str | None) -> None:
        """Cache the version just swapped in, then drop the versions neither it nor the one before
        need. A failure is recorded and logged; the new version is served either way."""
        status = self.status[record.name]
        self._uncached.pop(record.name, None)
        try:
            self.cache.save(record, data)
        except Exception as error:  # noqa: BLE001 - any cache failure (StorageError for a full or
            # unwritable folder, or a bug) must leave the verified version served: logged, counted.
            self._cache_failed(record.name, "write", error)
            self._uncached[record.name] = (record, data, previous)
            return
        status.cache_error = None
        keep = {record.version} | ({previous} if previous else set())
        try:
            removed = self.cache.prune(record.name, keep)
        except Exception as error:  # noqa: BLE001 - as above: clean-up must not fail a reload
            self._cache_failed(record.name, "prune", error)
            return
        if removed:
            log.info("removed old cached versions", model=record.name, versions=removed)

    def _retry_cache(self, name: str) -> None:
        """Write the served version the cache refused before: a freed disk heals without a new
        version. Only the bytes of the one served version per model are kept for this."""
        pending = self._uncached.get(name)
        served = self._models.get(name)
        if pending is not None and served is not None and served.record == pending[0]:
            self._cache_served(*pending)
            if self.status[name].cache_error is None:
                log.info("serving cache written again", model=name, version=pending[0].version)

    def _cache_failed(self, name: str, operation: CacheOperation, error: Exception) -> None:
        """Count every failure; log it with its traceback unless it repeats the last one (a
        write is retried on every poll while the cache stays broken)."""
        status = self.status[name]
        problem = describe_error(error)
        status.cache_errors[operation] += 1
        if problem != status.cache_error:
            log.error(_CACHE_FAILURE[operation], model=name, error=problem, exc_info=error)
        status.cache_error = problem

    def _load_from_cache(self, name: str) -> None:
        """Serve the cached version of `name`, if a sound one is there; never raises."""
        try:
            cached = self.cache.load(name, self.alias)
        except Exception as error:  # noqa: BLE001 - the cache is an optimisation: whatever is
            # wrong with an entry (truncated, a folder, a bug) it counts as missing, reported.
            self._cache_failed(name, "read", error)
            return
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
        except Exception as error:  # noqa: BLE001 - as above: a start must not depend on the cache
            self._cache_failed(name, "read", error)
            return
        self._swap(model)
        log.info(
            "serving cached version until the registry answers", model=name, version=record.version
        )

    def describe(self, name: str) -> tuple[LoadedModel | None, ModelStatus]:
        return self._models.get(name), self.status[name]
