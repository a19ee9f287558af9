"""`/v1/releases`: release requests, their decisions, rollback and comparison over HTTP.

The same core as `modelcycle release` (release/service.py), as the caller's identity: reading
needs a viewer, deciding an approver (not the requester), rollback an admin. Decisions talk to
the store and MLflow, so the routes are plain `def` and run in FastAPI's worker threads, never on
the event loop that answers predictions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from modelcycle.access.identity import Identity, Role
from modelcycle.errors import (
    ConflictError,
    DataNotFoundError,
    InvalidInputError,
    ModelcycleError,
    NotPermittedError,
)
from modelcycle.serving.identity import require
from modelcycle.serving.schemas import ErrorPublic

if TYPE_CHECKING:
    from modelcycle.release.service import Releases

log = structlog.get_logger(__name__)

Viewer = Annotated[Identity, Depends(require(Role.VIEWER))]
Operator = Annotated[Identity, Depends(require(Role.OPERATOR))]
Approver = Annotated[Identity, Depends(require(Role.APPROVER))]
Admin = Annotated[Identity, Depends(require(Role.ADMIN))]

_STATUS = (
    (NotPermittedError, 403),
    (DataNotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
)
_OPENING = threading.Lock()


def forget_registry_reads(app: FastAPI) -> None:
    """The registry moved: the dashboard's kept registry reads (serving/web) are stale."""
    reads = getattr(app.state, "dashboard_reads", None)
    if reads is not None:
        reads.invalidate()


def app_releases(app: FastAPI) -> Releases:
    """The app's releases (store and registry opened on first use), shared with the pages."""
    state = app.state
    with _OPENING:
        if getattr(state, "releases", None) is None:
            from modelcycle.registry.connection import registry_client
            from modelcycle.release.registry import ReleaseRegistry
            from modelcycle.release.service import Releases
            from modelcycle.storage.configured import lake_store
            from modelcycle.store import open_store

            settings = state.services.settings
            state.releases = Releases(
                store=open_store(settings),
                registry=ReleaseRegistry(lambda: registry_client(settings)[0]),
                environment=settings.environment,
                auto_approve=settings.resolved_release_auto_approve,
                lake=lake_store(settings),
                on_registry_moved=lambda: forget_registry_reads(app),
            )
        opened: Releases = state.releases
    return opened


def _releases(request: Request) -> Iterator[Releases]:
    """The app's releases, with errors as HTTP."""
    try:
        yield app_releases(request.app)
    except ModelcycleError as error:
        for kind, status in _STATUS:
            if isinstance(error, kind):
                raise HTTPException(status_code=status, detail=str(error)) from error
        raise HTTPException(status_code=503, detail=str(error)) from error


ReleasesDep = Annotated["Releases", Depends(_releases)]


def close_releases(app: FastAPI) -> None:
    """At shutdown: close the store the release routes opened (if any); never raises."""
    releases = getattr(app.state, "releases", None)
    if releases is None:
        return
    app.state.releases = None
    try:
        releases.store.close()
    except Exception as error:  # noqa: BLE001 - shutdown goes on whatever the store says
        log.error("shutdown: could not close the release store", error=str(error))


class Decision(BaseModel):
    comment: str = Field(default="", description="Why; kept in the audit trail (≤ 2000 chars).")


class Approval(Decision):
    override_reason: str | None = Field(
        default=None, description="Admins: approve despite failed gates, for this reason."
    )


class PromotionRequest(BaseModel):
    model: str = Field(min_length=1, max_length=200, description="Registered model name.")
    version: str = Field(pattern=r"^[0-9]{1,10}$", description="Approved in this environment.")
    to: Literal["local", "dev", "prod"] = Field(description="Target environment.")
    comment: str = Field(default="", description="Why; kept on the target request (≤ 2000).")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong API key."},
    422: {"description": "A parameter is wrong (an unknown state, a version that is no number)."},
    403: {"model": ErrorPublic, "description": "The caller's role may not, or it is their own."},
    404: {"model": ErrorPublic, "description": "No such release request, model or version."},
    503: {"model": ErrorPublic, "description": "The store or the registry failed; nothing done."},
}
_DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    400: {"model": ErrorPublic, "description": "The body could not be read (not UTF-8 JSON)."},
    409: {"model": ErrorPublic, "description": "The request is already decided or superseded."},
    413: {"model": ErrorPublic, "description": "Too large a body."},
    422: {"description": "A comment or reason over 2000 characters, or a malformed body."},
}
RequestId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Release request id.")]
ModelName = Annotated[str, PathParam(min_length=1, max_length=200)]
ModelQuery = Annotated[str, Query(min_length=1, max_length=200, description="Registered model.")]

release_routes = APIRouter(prefix="/v1/releases", tags=["releases"])


@release_routes.get("", responses=_ERRORS)
def list_releases(
    _caller: Viewer,
    releases: ReleasesDep,
    model: Annotated[
        str | None, Query(max_length=200, description="Only this model's requests.")
    ] = None,
    state: Annotated[str | None, Query(description="pending, approved, …")] = None,
) -> list[dict[str, Any]]:
    """This environment's release requests, newest first."""
    return [r.to_dict() for r in releases.requests(model, state)]


@release_routes.get("/history", responses=_ERRORS)
def release_history(
    _caller: Viewer,
    releases: ReleasesDep,
    model: Annotated[
        str | None, Query(max_length=200, description="Only this model's decisions.")
    ] = None,
) -> list[dict[str, Any]]:
    """The audit trail, oldest first."""
    return [d.to_dict() for d in releases.history(model)]


@release_routes.get("/compare", responses=_ERRORS)
def compare_versions(
    _caller: Viewer,
    releases: ReleasesDep,
    model: ModelQuery,
    a: Annotated[str, Query(pattern=r"^[0-9]{1,10}$", description="A version, e.g. 4.")],
    b: Annotated[str, Query(pattern=r"^[0-9]{1,10}$", description="Another version.")],
) -> dict[str, Any]:
    """Two versions side by side: metrics and deltas (b - a), confusion matrices, params,
    lineage, gate results, their evaluations on the same days, and `live`: how they scored the
    same requests when one shadowed the other (MODELCYCLE_SERVING_SHADOW), or null."""
    from modelcycle.release.compare import with_history

    return with_history(releases.compare(model, a, b), releases.store)


@release_routes.get("/{request_id}", responses=_ERRORS)
def get_release(_caller: Viewer, releases: ReleasesDep, request_id: RequestId) -> dict[str, Any]:
    """One request with every decision on it."""
    record, trail = releases.get(request_id)
    return {**record.to_dict(), "decisions": [d.to_dict() for d in trail]}


@release_routes.post("/{request_id}/approve", responses=_DECISION_ERRORS)
def approve_release(
    caller: Approver, releases: ReleasesDep, request_id: RequestId, body: Approval
) -> dict[str, Any]:
    """Move `champion` to the request's version (the old one to `previous`), audited."""
    decision = releases.approve(
        request_id, actor=caller, comment=body.comment, override_reason=body.override_reason
    )
    return decision.to_dict()


@release_routes.post("/{request_id}/reject", responses=_DECISION_ERRORS)
def reject_release(
    caller: Approver, releases: ReleasesDep, request_id: RequestId, body: Decision
) -> dict[str, Any]:
    """End the request rejected; `champion` stays."""
    return releases.reject(request_id, actor=caller, comment=body.comment).to_dict()


@release_routes.post("/rollback/{model}", responses=_DECISION_ERRORS)
def rollback_release(
    caller: Admin, releases: ReleasesDep, model: ModelName, body: Decision
) -> dict[str, Any]:
    """Return `champion` to the version the current one replaced, in one step, audited."""
    return releases.rollback(model, actor=caller, comment=body.comment).to_dict()


@release_routes.post("/promote", responses=_DECISION_ERRORS)
def promote_release(
    caller: Operator, releases: ReleasesDep, request: Request, body: PromotionRequest
) -> dict[str, Any]:
    """Copy a version approved here into the target environment's registry, with its lineage;
    there it is `challenger` with a release request that waits for the target's approver."""
    from modelcycle.release.promotion import open_target, promote, source_side

    settings = request.app.state.services.settings
    with open_target(settings, body.to) as target:
        done = promote(
            source_side(releases, settings),
            target,
            model=body.model,
            version=body.version,
            actor=caller,
            comment=body.comment,
        )
    return done.to_dict()
