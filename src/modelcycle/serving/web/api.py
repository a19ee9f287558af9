"""The dashboard's JSON twins under `/v1/`, behind the API keys like the rest of `/v1/`: the team
overview and a model's versions, the same dicts the pages render. The releases' twins are
`/v1/releases` (serving/releases.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam

from modelcycle.access.identity import Role
from modelcycle.errors import DataNotFoundError, ModelcycleError
from modelcycle.overview.team import team_overview
from modelcycle.overview.versions import model_versions
from modelcycle.serving.identity import CurrentIdentity
from modelcycle.serving.releases import app_releases
from modelcycle.serving.schemas import ErrorPublic
from modelcycle.serving.web.release_pages import release_detail
from modelcycle.serving.web.rendering import now, registry_of, settings_of

if TYPE_CHECKING:
    from modelcycle.store import Store

dashboard_api = APIRouter(prefix="/v1", tags=["dashboard"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong API key."},
    403: {"model": ErrorPublic, "description": "A customer's account: not the team's data."},
    404: {"model": ErrorPublic, "description": "No such model or release request."},
    422: {"description": "A parameter is malformed (a request id that is no number)."},
    503: {"model": ErrorPublic, "description": "The store or the registry failed."},
}


def _team_only(identity: CurrentIdentity) -> None:
    if identity.customer_id is not None or not identity.may(Role.VIEWER):
        raise HTTPException(403, f"{identity.name} is a customer account: not the team's data")


def _store(request: Request) -> Store:
    return app_releases(request.app).store


def _answer(error: ModelcycleError) -> HTTPException:
    if isinstance(error, DataNotFoundError):
        return HTTPException(404, str(error))
    return HTTPException(503, str(error))


@dashboard_api.get("/dashboard", responses=_ERRORS)
def dashboard_json(request: Request, identity: CurrentIdentity) -> dict[str, Any]:
    """The team overview: per model accuracy per day, 7-day average, versions, age, drift; the
    recent daily trainings and the firing alerts."""
    _team_only(identity)
    try:
        names = settings_of(request).model_names
        return team_overview(_store(request), registry_of(request), names, now())
    except ModelcycleError as error:
        raise _answer(error) from error


@dashboard_api.get("/models/{name}/versions", responses=_ERRORS)
def versions_json(
    request: Request, identity: CurrentIdentity, name: str = PathParam(max_length=200)
) -> dict[str, Any]:
    """A model's newest versions side by side, each with its evaluation history."""
    _team_only(identity)
    try:
        return model_versions(_store(request), registry_of(request), name)
    except ModelcycleError as error:
        raise _answer(error) from error


@dashboard_api.get("/releases/{request_id}/detail", responses=_ERRORS)
def release_detail_json(
    request: Request, identity: CurrentIdentity, request_id: int = PathParam(ge=1, le=2**31 - 1)
) -> dict[str, Any]:
    """A release request, its decisions, and its version beside the champion."""
    _team_only(identity)
    try:
        return release_detail(app_releases(request.app), registry_of(request), request_id)
    except ModelcycleError as error:
        raise _answer(error) from error
