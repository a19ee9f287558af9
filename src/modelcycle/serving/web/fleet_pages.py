"""The customer's fleet pages: `/fleet` (their devices, filtered, searched, sorted and paged on
the server) and `/fleet/devices/{id}` (sensors, scores with thresholds, contributors, alerts).

They render what `fleet/` builds for the JSON twins `/v1/fleet/devices[/{id}]`, scoped the same
way (`serving/fleet.py`'s `scoped_customer`): another customer's device is the same 404 page as
an unknown one. Team users (no customer) name the customer with `?customer=`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from modelcycle.access.identity import Identity
from modelcycle.errors import DataNotFoundError, InvalidInputError, ModelcycleError
from modelcycle.fleet.query import MAX_DAYS, SORT_KEYS, DeviceQuery, DeviceStatus
from modelcycle.fleet.sources import FleetSources
from modelcycle.serving.fleet import fleet_sources, scoped_customer
from modelcycle.serving.web.rendering import PageError, SignedIn, page_error_of, render

fleet_pages = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
_DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
Sources = Annotated[FleetSources, Depends(fleet_sources)]
Text = Annotated[str, Query(max_length=100)]


def _owner(user: Identity, customer: str) -> str | None:
    """The customer shown; None when a team user has not picked one yet."""
    if user.customer_id is None and not customer:
        return None
    try:
        return scoped_customer(user, customer or None)
    except DataNotFoundError as error:
        raise PageError(404, str(error)) from error


def _status(value: str) -> DeviceStatus | None:
    if not value:
        return None
    try:
        return DeviceStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in DeviceStatus)
        raise PageError(422, f"status: {value!r} is not one of {known}") from None


@fleet_pages.get("/fleet")
def fleet_page(
    request: Request,
    user: SignedIn,
    sources: Sources,
    customer: Text = "",
    status: Text = "",
    q: Text = "",
    sort: Text = "device_id",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    owner = _owner(user, customer)
    context: dict[str, Any] = {"user": user, "customer": customer, "result": None}
    if owner is None:
        return render(request, "fleet.html", context)
    try:
        query = DeviceQuery(
            status=_status(status),
            search=q,
            sort=sort or "device_id",
            page=page,
            page_size=PAGE_SIZE,
        )
        from modelcycle.fleet.devices import device_page  # loaded by fleet_sources

        result = device_page(sources, owner, query)
    except ModelcycleError as error:
        raise page_error_of(error) from error
    pages = max(1, -(-result.total // PAGE_SIZE))
    context |= {
        "result": result,
        "query": query,
        "statuses": [s.value for s in DeviceStatus],
        "sort_keys": SORT_KEYS,
        "pages": pages,
        "team_customer": customer if user.customer_id is None else "",
    }
    return render(request, "fleet.html", context)


@fleet_pages.get("/fleet/devices/{device_id}")
def device_page_view(
    request: Request,
    user: SignedIn,
    sources: Sources,
    device_id: str,
    customer: Text = "",
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
) -> Response:
    if not _DEVICE_ID.fullmatch(device_id):
        raise PageError(404, f"no device {device_id[:100]!r}")
    owner = _owner(user, customer)
    if owner is None:
        raise PageError(422, "customer: required for a user not bound to a customer")
    try:
        from modelcycle.fleet.detail import device_detail  # loaded by fleet_sources

        detail = device_detail(sources, owner, device_id, days=days)
    except InvalidInputError as error:
        raise PageError(422, str(error)) from error
    except ModelcycleError as error:
        raise page_error_of(error) from error
    chart = jsonable_encoder(
        {"series": detail.series, "scores": detail.scores, "thresholds": detail.thresholds}
    )
    context = {
        "user": user,
        "detail": detail,
        "chart": chart,
        "team_customer": customer if user.customer_id is None else "",
    }
    return render(request, "device.html", context)
