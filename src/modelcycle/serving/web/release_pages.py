"""`/releases`: pending requests, one request with its gates beside the champion, and the
approve / reject / rollback forms, decided through the same release service as the CLI and the
API (release/service.py): not one's own request, failed gates only with an admin's reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from modelcycle.access.identity import Role
from modelcycle.errors import DataNotFoundError, ModelcycleError
from modelcycle.overview.registry_reads import RegistryReads
from modelcycle.serving.web.rendering import (
    Approver,
    CheckedForm,
    PageError,
    TeamMember,
    page_error_of,
    registry_of,
    releases_of,
    render,
)

if TYPE_CHECKING:
    from modelcycle.release.service import Releases

release_pages = APIRouter(prefix="/releases", include_in_schema=False)

_MAX_ID = 2**31 - 1


def _request_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_ID:
        raise PageError(404, f"no release request {text!r}")
    return int(text)


def _champion(reads: RegistryReads, model: str) -> str | None:
    try:
        return reads.aliases(model).get("champion")
    except DataNotFoundError:
        return None


def release_detail(releases: Releases, reads: RegistryReads, request_id: int) -> dict[str, Any]:
    """The request, its decisions, and its version beside the champion (when another one); the
    registry's answers from the dashboard's kept reads."""
    from modelcycle.release.compare import with_history

    record, trail = releases.get(request_id)
    champion = _champion(reads, record.model)
    comparison = None
    if champion is not None and champion != record.version:
        compared = releases.compare(record.model, champion, record.version, facts_of=reads.facts)
        comparison = with_history(compared, releases.store)
    return {
        "request": record.to_dict(),
        "decisions": [d.to_dict() for d in trail],
        "champion": champion,
        "comparison": comparison,
    }


@release_pages.get("")
def releases_page(request: Request, user: TeamMember) -> Response:
    try:
        releases = releases_of(request)
        listed = [r.to_dict() for r in releases.requests()]
        history = [d.to_dict() for d in releases.history()][-50:][::-1]
    except ModelcycleError as error:
        raise page_error_of(error) from error
    pending = [r for r in listed if r["state"] == "pending"]
    models = sorted({r["model"] for r in listed})
    context = {
        "user": user,
        "pending": pending,
        "recent": [r for r in listed if r["state"] != "pending"][:20],
        "history": history,
        "models": models,
        "is_admin": user.may(Role.ADMIN),
    }
    return render(request, "releases.html", context)


@release_pages.get("/{request_id}")
def release_page(request: Request, user: TeamMember, request_id: str = Path()) -> Response:
    try:
        detail = release_detail(releases_of(request), registry_of(request), _request_id(request_id))
    except ModelcycleError as error:
        raise page_error_of(error) from error
    context = {
        "user": user,
        **detail,
        "may_decide": user.may(Role.APPROVER),
        "is_admin": user.may(Role.ADMIN),
    }
    return render(request, "release.html", context)


@release_pages.post("/{request_id}/approve")
def approve(
    request: Request, user: Approver, form: CheckedForm, request_id: str = Path()
) -> Response:
    number = _request_id(request_id)
    reason = form.get("override_reason", "").strip() or None
    try:
        releases_of(request).approve(
            number, actor=user, comment=form.get("comment", ""), override_reason=reason
        )
    except ModelcycleError as error:
        raise page_error_of(error) from error
    return RedirectResponse(f"/releases/{number}", status_code=303)


@release_pages.post("/{request_id}/reject")
def reject(
    request: Request, user: Approver, form: CheckedForm, request_id: str = Path()
) -> Response:
    number = _request_id(request_id)
    try:
        releases_of(request).reject(number, actor=user, comment=form.get("comment", ""))
    except ModelcycleError as error:
        raise page_error_of(error) from error
    return RedirectResponse(f"/releases/{number}", status_code=303)


@release_pages.post("/rollback/{model}")
def rollback(request: Request, user: Approver, form: CheckedForm, model: str = Path()) -> Response:
    if not user.may(Role.ADMIN):
        raise PageError(403, f"rollback needs the admin role; {user.name} is {user.role.value}")
    try:
        releases_of(request).rollback(model, actor=user, comment=form.get("comment", ""))
    except ModelcycleError as error:
        raise page_error_of(error) from error
    return RedirectResponse("/releases", status_code=303)
