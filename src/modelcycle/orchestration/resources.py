"""What assets need, built from the one Settings object: the stores and the monitoring store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from modelcycle.settings import Settings, load_settings
from modelcycle.storage import ObjectStore
from modelcycle.storage.configured import lake_store, raw_store
from modelcycle.store import Store
from modelcycle.store import open_store as open_monitoring_store

if TYPE_CHECKING:
    from modelcycle.monitoring.daily import Monitoring


class ModelcycleResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Settings come from MODELCYCLE_* as for the CLI; nothing is configured twice.

    Dagster re-creates the resource from its (empty) config for each run or tick, so Settings
    cannot be handed in; they are read once, on first use, and every step of the run gets the
    same object.
    """

    _settings: Settings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Our log lines in a run follow MODELCYCLE_LOG_FORMAT and carry the Dagster run id;
        Dagster keeps them with the run (its captured stderr, shown in the UI)."""
        import structlog

        from modelcycle.observability import configure_logging_once

        configure_logging_once(self.settings())  # the CLI running a job in-process already did
        if context.run_id:
            structlog.contextvars.bind_contextvars(dagster_run_id=context.run_id)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def lake(self) -> ObjectStore:
        return lake_store(self.settings())

    def raw(self) -> ObjectStore:
        return raw_store(self.settings())

    @contextmanager
    def monitoring(self) -> Iterator[Monitoring]:
        """What `score_day` and `evaluate_day` need, with the store closed afterwards."""
        from modelcycle.monitoring.daily import open_monitoring

        with open_monitoring(self.settings()) as monitoring:
            yield monitoring

    @contextmanager
    def monitoring_store(self) -> Iterator[Store]:
        store = open_monitoring_store(self.settings())
        try:
            yield store
        finally:
            store.close()
