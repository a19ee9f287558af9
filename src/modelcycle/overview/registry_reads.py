"""The dashboard's registry reads, kept for a few seconds: MLflow answers each page's dozen calls
in hundreds of milliseconds, while the answers change only when an alias moves.

Whoever moves an alias in this process (a release decision, the MLflow webhook, the model
manager's poll seeing a new version) calls `invalidate`, so an approval shows on the next page at
once; a move made elsewhere shows within `ttl_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from modelcycle.errors import DataNotFoundError, RegistryError

if TYPE_CHECKING:  # MLflow is imported on the first read: the API starts without it
    from mlflow.tracking import MlflowClient

    from modelcycle.registry.ages import ModelAge
    from modelcycle.registry.catalog import ModelVersionRecord
    from modelcycle.release.compare import VersionFacts

T = TypeVar("T")


def check_registered(client: MlflowClient, model: str) -> dict[str, str]:
    """The model's aliases; a `DataNotFoundError` when no model has that name (or none could)."""
    from mlflow.exceptions import MlflowException

    from modelcycle.registry.uris import first_line

    try:
        found = client.get_registered_model(model)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise DataNotFoundError(f"no registered model {model!r}") from error
        raise RegistryError(f"reading {model} failed: {first_line(error)}") from error
    return {alias: str(v) for alias, v in (found.aliases or {}).items()}


class RegistryReads:
    """The registry reads of `overview/`, each answer kept `ttl_seconds` (0: never kept).

    Failures are not kept: the next page asks the registry again.
    """

    def __init__(self, client: MlflowClient, ttl_seconds: float = 0.0):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._kept: dict[Hashable, tuple[float, Any]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every kept answer: the registry changed."""
        with self._lock:
            self._kept.clear()
            self._generation += 1

    def _read(self, key: Hashable, read: Callable[[], T]) -> T:
        if self.ttl_seconds <= 0:
            return read()
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < self.ttl_seconds:
                answer: T = kept[1]
                return answer
            generation = self._generation
        answer = read()
        with self._lock:
            # An invalidation while reading: the answer may predate the move, so it is not kept.
            if generation == self._generation:
                self._kept[key] = (now, answer)
        return answer

    def aliases(self, model: str) -> dict[str, str]:
        return self._read(("aliases", model), lambda: check_registered(self.client, model))

    def facts(self, model: str, version: str) -> VersionFacts:
        from modelcycle.release.compare import facts

        return self._read(("facts", model, version), lambda: facts(self.client, model, version))

    def ages(self, names: Sequence[str]) -> dict[str, ModelAge]:
        from modelcycle.registry.catalog import model_ages

        key = ("ages", tuple(names))
        return self._read(key, lambda: model_ages(self.client, list(names)))

    def versions(self, model: str, newest: int) -> list[ModelVersionRecord]:
        """The model's `newest` versions, newest first."""
        from modelcycle.registry.catalog import list_versions

        key = ("versions", model, newest)
        return self._read(key, lambda: list_versions(self.client, [model], newest=newest))
