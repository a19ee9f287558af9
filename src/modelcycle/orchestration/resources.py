"""What assets need, built from the one Settings object: the stores and the monitoring store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from modelcycle.settings import Settings

if TYPE_CHECKING:
    from modelcycle.monitoring.daily import Monitoring
from modelcycle.storage import ObjectStore, open_store
from modelcycle.store import Store
from modelcycle.store import open_store as open_monitoring_store


class ModelcycleResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Settings come from MODELCYCLE_* as for the CLI; nothing is configured twice."""

    def settings(self) -> Settings:
        return Settings()

    def _store(self, url: str) -> ObjectStore:
        settings = self.settings()
        return open_store(
            url,
            s3_endpoint_url=settings.s3_endpoint_url,
            gcs_endpoint_url=settings.gcs_endpoint_url,
        )

    def lake(self) -> ObjectStore:
        return self._store(self.settings().resolved_lake_url)

    def raw(self) -> ObjectStore:
        return self._store(self.settings().resolved_raw_url)

    @contextmanager
    def monitoring(self) -> Iterator[Monitoring]:
        """What `score_day` and `evaluate_day` need, with the store closed afterwards."""
        from modelcycle.monitoring.daily import Monitoring

        with self.monitoring_store() as store:
            yield Monitoring(
                settings=self.settings(), lake=self.lake(), raw=self.raw(), store=store
            )

    @contextmanager
    def monitoring_store(self) -> Iterator[Store]:
        store = open_monitoring_store(self.settings())
        try:
            yield store
        finally:
            store.close()
