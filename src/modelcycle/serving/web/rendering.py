"""Templates, the errors a page answers with, and who is signed in, for the dashboard's routes.

The routes are plain `def`: they read the store and MLflow, so FastAPI runs them in its worker
threads, never on the event loop that answers predictions.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from modelcycle.access.identity import Identity, Role
from modelcycle.errors import (
    ConflictError,
    DataNotFoundError,
    InvalidInputError,
    ModelcycleError,
    NotPermittedError,
)
from modelcycle.overview.registry_reads import RegistryReads
from modelcycle.serving.releases import app_releases
from modelcycle.serving.web.sessions import CSRF_FIELD, csrf_matches, csrf_token, session_user
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from modelcycle.release.service import Releases
    from modelcycle.store import Store

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# No inline script, nothing from elsewhere: the page's data sits in `application/json` blocks.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_OPENING = threading.Lock()
_STATUS = ((NotPermittedError, 403), (DataNotFoundError, 404), (ConflictError, 409))


class PageError(Exception):
    """Answered with the error page: a status and one line for a person."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class SignInRequired(Exception):  # noqa: N818 - an answer (a redirect), not a failure
    """No session, an expired one, or one from before the password changed: to the sign-in."""


def page_error_of(error: ModelcycleError) -> PageError:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return PageError(status, str(error))
    if isinstance(error, InvalidInputError):
        return PageError(422, str(error))
    return PageError(503, str(error))


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"csrf_field": CSRF_FIELD, "csrf_token": csrf_token(request), **context},
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(PageError)
    async def page_error(request: Request, error: PageError) -> Response:
        context = {"status": error.status, "message": str(error), "user": None}
        return render(request, "error.html", context, status=error.status)

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, error: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.services.settings
    return settings


def releases_of(request: Request) -> Releases:
    try:
        return app_releases(request.app)
    except ModelcycleError as error:
        raise page_error_of(error) from error


def store_of(request: Request) -> Store:
    return releases_of(request).store


def _served_versions(request: Request) -> tuple[tuple[str, str], ...]:
    models = request.app.state.services.manager.models
    return tuple(sorted((name, model.record.version) for name, model in models.items()))


def registry_of(request: Request) -> RegistryReads:
    """The app's kept registry reads over one MLflow client, made on first use (no server is
    asked until then); forgotten when the model manager's poll has swapped a served version."""
    state = request.app.state
    with _OPENING:
        if getattr(state, "dashboard_reads", None) is None:
            from modelcycle.registry.connection import registry_client

            client = registry_client(settings_of(request))[0]
            seconds = settings_of(request).dashboard_cache_seconds
            state.dashboard_reads = RegistryReads(client, ttl_seconds=seconds)
            state.dashboard_served = _served_versions(request)
        reads: RegistryReads = state.dashboard_reads
        served = _served_versions(request)
        if served != state.dashboard_served:
            state.dashboard_served = served
            reads.invalidate()
    return reads


def signed_in(request: Request) -> Identity:
    """The signed-in user, still active and with the password they signed in with."""
    from modelcycle.access.passwords import session_user as active_session_user

    found = session_user(request)
    if found is None:
        raise SignInRequired()
    name, stamp = found
    with store_of(request).session() as session:
        identity = active_session_user(session=session, name=name, password_set_at=stamp)
    if identity is None:
        request.session.clear()
        raise SignInRequired()
    return identity


def team_member(identity: Annotated[Identity, Depends(signed_in)]) -> Identity:
    """The team's pages are not for a customer's account: they name every customer's alerts."""
    if identity.customer_id is not None:
        raise PageError(
            403, f"{identity.name} is a customer account: the team pages are not theirs"
        )
    return identity


def approver(identity: Annotated[Identity, Depends(team_member)]) -> Identity:
    if not identity.may(Role.APPROVER):
        raise PageError(
            403,
            f"deciding releases needs the approver role; {identity.name} is {identity.role.value}",
        )
    return identity


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form when it carries the session's CSRF token; the 403 page otherwise."""
    form = await request.form()
    if not csrf_matches(request, form.get(CSRF_FIELD)):
        raise PageError(403, "this form has no valid CSRF token: reload the page and try again")
    return {key: value for key, value in form.items() if isinstance(value, str)}


SignedIn = Annotated[Identity, Depends(signed_in)]
TeamMember = Annotated[Identity, Depends(team_member)]
Approver = Annotated[Identity, Depends(approver)]
CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def now() -> datetime:
    return datetime.now(UTC)
