"""The raw area and the lake as the settings name them, with their S3/GCS endpoints."""

from __future__ import annotations

from modelcycle.settings import Settings
from modelcycle.storage.object_store import ObjectStore, open_store


def store_for(settings: Settings, url: str) -> ObjectStore:
    return open_store(
        url,
        s3_endpoint_url=settings.s3_endpoint_url,
        gcs_endpoint_url=settings.gcs_endpoint_url,
    )


def lake_store(settings: Settings, lake_url: str | None = None) -> ObjectStore:
    return store_for(settings, lake_url or settings.resolved_lake_url)


def raw_store(settings: Settings, raw_url: str | None = None) -> ObjectStore:
    return store_for(settings, raw_url or settings.resolved_raw_url)
