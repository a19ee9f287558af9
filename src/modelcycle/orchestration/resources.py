"""What assets need, built from the one Settings object: the stores and the monitoring store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from modelcycle.settings import Settings
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
    def monitoring_store(self) -> Iterator[Store]:
        store = open_monitoring_store(self.settings())
        try:
            yield store
        finally:
            store.close()
