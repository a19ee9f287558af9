"""`/v1/fleet/devices`: a customer's devices and one device's detail, as JSON.

Scoped by the caller: a user bound to a customer sees that customer's devices only, and a device
of another customer answers 404 exactly like one that does not exist (by URL, search or filter);
team users (no customer) name the customer with `?customer=`. The core is `fleet/`; the routes are
plain `def`, run in worker threads, as they read Parquet and the store.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from modelcycle.access.identity import Identity, Role
from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.fleet.query import MAX_DAYS, MAX_PAGE_SIZE, DeviceQuery, DeviceStatus
from modelcycle.fleet.sources import FleetSources
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.serving.identity import require
from modelcycle.serving.schemas import ErrorPublic

Viewer = Annotated[Identity, Depends(require(Role.VIEWER))]
_OPENING = threading.Lock()
_DEVICE_ID = r"^[A-Za-z0-9._-]{1,100}$"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong API key."},
    404: {"model": ErrorPublic, "description": "No such device or customer for this caller."},
    422: {"description": "A query parameter is wrong (unknown status or sort key, bad page)."},
}


def fleet_sources(request: Request) -> FleetSources:
    """The lake, raw area and store of the app's settings, opened on first use, with the readers
    (polars, pyarrow, SQLAlchemy): the API starts without them."""
    state = request.app.state
    with _OPENING:
        if getattr(state, "fleet_sources", None) is None:
            with FIRST_USE_IMPORTS:
                import modelcycle.fleet.detail  # noqa: F401 - imports the list's readers too
            from modelcycle.storage import open_store as open_object_store
            from modelcycle.store import open_store

            settings = state.services.settings
            options = {
                "s3_endpoint_url": settings.s3_endpoint_url,
                "gcs_endpoint_url": settings.gcs_endpoint_url,
            }
            state.fleet_sources = FleetSources(
                lake=open_object_store(settings.resolved_lake_url, **options),
                raw=open_object_store(settings.resolved_raw_url, **options),
                store=open_store(settings),
                anomaly_model=settings.anomaly_model_name,
                fault_model=settings.classifier_model_name,
            )
    sources: FleetSources = state.fleet_sources
    return sources


Sources = Annotated[FleetSources, Depends(fleet_sources)]
CustomerParam = Annotated[
    str | None,
    Query(max_length=100, description="Team users: whose fleet. Customer users: their own only."),
]


def scoped_customer(identity: Identity, customer: str | None) -> str:
    """The customer whose devices the caller may see; another customer's is not found (404)."""
    if identity.customer_id is not None:
        if customer not in (None, identity.customer_id):
            raise DataNotFoundError(f"no customer {customer!r}")
        return identity.customer_id
    if not customer:
        raise InvalidInputError("customer: required for a user not bound to a customer")
    return customer


fleet_routes = APIRouter(prefix="/v1/fleet", tags=["fleet"])


@fleet_routes.get("/devices", responses=_ERRORS)
def list_devices(
    identity: Viewer,
    sources: Sources,
    customer: CustomerParam = None,
    status: Annotated[DeviceStatus | None, Query(description="Only devices in it.")] = None,
    q: Annotated[str, Query(max_length=100, description="Part of a device id or site.")] = "",
    sort: Annotated[
        str, Query(max_length=40, description="device_id, status, anomaly_score, …; -key reverses.")
    ] = "device_id",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """The customer's devices with status from the latest scored day, filtered, sorted, paged."""
    owner = scoped_customer(identity, customer)
    query = DeviceQuery(status=status, search=q, sort=sort, page=page, page_size=page_size)
    from modelcycle.fleet.devices import device_page  # loaded by fleet_sources

    result = device_page(sources, owner, query)
    return {
        "customer_id": result.customer_id,
        "scored_day": result.scored_day,
        "total": result.total,
        "page": result.page,
        "page_size": result.page_size,
        "counts": result.counts,
        "devices": result.devices,
    }


@fleet_routes.get("/devices/{device_id}", responses=_ERRORS)
def get_device(
    identity: Viewer,
    sources: Sources,
    device_id: Annotated[str, PathParam(pattern=_DEVICE_ID)],
    customer: CustomerParam = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days of history shown.")] = 7,
    sensors: Annotated[
        str, Query(max_length=2000, description="Comma-separated sensors (default: top ones).")
    ] = "",
) -> dict[str, Any]:
    """A device's hourly sensor means, scores with thresholds, top contributing sensors, alerts."""
    owner = scoped_customer(identity, customer)
    chosen = [s.strip() for s in sensors.split(",") if s.strip()] or None
    from modelcycle.fleet.detail import device_detail  # loaded by fleet_sources

    detail = device_detail(sources, owner, device_id, days=days, sensors=chosen)
    return {
        "device": detail.device,
        "days": detail.days,
        "sensors": detail.sensors,
        "series": detail.series,
        "scores": detail.scores,
        "thresholds": detail.thresholds,
        "contributors": detail.contributors,
        "alerts": detail.alerts,
    }


def close_fleet_sources(state: Any) -> None:
    sources = getattr(state, "fleet_sources", None)
    if sources is not None:
        state.fleet_sources = None
        sources.store.close()
