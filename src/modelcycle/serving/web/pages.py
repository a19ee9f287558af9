"""The dashboard's pages: sign-in and out, the team overview, a model's page, and the assets.

Each page renders the same dict its `/v1/` twin returns (serving/web/api.py), built by the core
(`overview/`); the routes only check who asks, call it, and render.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from modelcycle.errors import InvalidInputError, ModelcycleError
from modelcycle.overview.team import team_overview
from modelcycle.overview.versions import model_versions
from modelcycle.serving.web.links import Links
from modelcycle.serving.web.rendering import (
    HERE,
    CheckedForm,
    PageError,
    SignedIn,
    TeamMember,
    checked_form,
    now,
    page_error_of,
    registry_of,
    render,
    settings_of,
    store_of,
)
from modelcycle.serving.web.sessions import SignInLimiter, session_user, start_session

pages = APIRouter(include_in_schema=False)

_ASSETS = {
    "dashboard.css": (HERE / "static" / "dashboard.css", "text/css"),
    "charts.js": (HERE / "static" / "charts.js", "text/javascript"),
    "fleet.js": (HERE / "static" / "fleet.js", "text/javascript"),
}


def _safe_next(target: str | None) -> str:
    """Only a path of this site: `//evil.example` or `https://…` would leave it."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/dashboard"
    parts = urlsplit(target)
    return "/dashboard" if parts.scheme or parts.netloc else target


@pages.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly's own bundle from the `plotly` package: no CDN, no network."""
    path = files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(str(path), media_type="text/javascript", headers=_CACHED)


_CACHED = {"Cache-Control": "public, max-age=86400"}


@pages.get("/static/{name}")
def asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise PageError(404, f"no asset {name!r}")
    path, media_type = _ASSETS[name]
    return FileResponse(path, media_type=media_type, headers=_CACHED)


@pages.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


@pages.get("/signin")
def signin_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    if session_user(request) is not None:
        request.session.clear()  # a stale or foreign session: start clean
    return render(request, "signin.html", {"next": _safe_next(next), "error": None, "user": None})


def _limiter(request: Request) -> SignInLimiter:
    limiter: SignInLimiter = request.app.state.signin_limiter
    return limiter


@pages.post("/signin")
def sign_in(request: Request, form: CheckedForm) -> Response:
    """One answer for a wrong password and an unknown user (same words, same argon2 work)."""
    from modelcycle.access.passwords import SignInRefusedError, verify_sign_in

    name = form.get("username", "").strip().lower()
    password = form.get("password", "")
    target = _safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    limiter = _limiter(request)
    wait = limiter.wait_seconds(name, address)
    if wait > 0:
        message = f"too many failed sign-ins for {name!r}: try again in {int(wait) + 1} s"
        context = {"next": target, "error": message, "user": None}
        return render(request, "signin.html", context, status=429)
    try:
        with store_of(request).session() as session:
            signed = verify_sign_in(session=session, name=name, password=password)
    except SignInRefusedError as error:
        limiter.failed(name, address)
        context = {"next": target, "error": str(error), "user": None}
        return render(request, "signin.html", context, status=401)
    except ModelcycleError as error:
        raise page_error_of(error) from error
    limiter.succeeded(name, address)
    start_session(request, signed.identity.name, signed.password_set_at)
    if not form.get("next") and signed.identity.customer_id is not None:
        target = "/fleet"  # a customer account's home: the team pages are not theirs
    return RedirectResponse(target, status_code=303)


@pages.post("/signout")
def sign_out(request: Request, form: CheckedForm) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/signin", status_code=303)


@pages.get("/dashboard")
def dashboard(request: Request, user: TeamMember) -> Response:
    settings = settings_of(request)
    try:
        overview = team_overview(
            store_of(request), registry_of(request), settings.model_names, now()
        )
    except ModelcycleError as error:
        raise page_error_of(error) from error
    context = {"user": user, "overview": overview, "links": Links(settings)}
    return render(request, "dashboard.html", context)


@pages.get("/models/{name}")
def model_page(request: Request, name: str, user: TeamMember) -> Response:
    settings = settings_of(request)
    if len(name) > 200:
        raise PageError(404, "no such model")
    try:
        versions = model_versions(store_of(request), registry_of(request), name)
    except InvalidInputError as error:
        raise PageError(404, str(error)) from error
    except ModelcycleError as error:
        raise page_error_of(error) from error
    context = {"user": user, "model": versions, "links": Links(settings)}
    return render(request, "model.html", context)


__all__ = ["SignedIn", "checked_form", "pages"]
