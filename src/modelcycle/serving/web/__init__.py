"""The web dashboard: pages served by the prediction API's own app ([docs/dashboard.md]).

Server-rendered Jinja2 templates, Plotly charts from the `plotly` package's own bundle, a small
stylesheet: nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import html

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from modelcycle.errors import InvalidInputError
from modelcycle.serving.web.api import dashboard_api
from modelcycle.serving.web.fleet_pages import fleet_pages
from modelcycle.serving.web.pages import pages
from modelcycle.serving.web.release_pages import release_pages
from modelcycle.serving.web.rendering import install_page_errors
from modelcycle.serving.web.sessions import (
    API_PREFIXES,
    PageSessions,
    SignInLimiter,
    session_secret,
)
from modelcycle.settings import Settings

log = structlog.get_logger(__name__)


class DashboardUnavailable:
    """Without a session secret the pages answer 503 saying why; the API serves on."""

    def __init__(self, app: ASGIApp, *, reason: str):
        self.app = app
        self.body = (
            "<!doctype html><title>dashboard unavailable</title>"
            f"<p>The dashboard is off: {html.escape(reason)}</p>"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def mount_dashboard(app: FastAPI, settings: Settings) -> None:
    """The pages, their JSON twins, and the session layer (added last: it wraps the app)."""
    app.state.signin_limiter = SignInLimiter(
        settings.signin_max_attempts, settings.signin_window_seconds
    )
    app.include_router(dashboard_api)
    app.include_router(pages)
    app.include_router(release_pages)
    app.include_router(fleet_pages)
    install_page_errors(app)
    try:
        secret = session_secret(settings)
    except InvalidInputError as error:
        log.warning("dashboard off", reason=str(error))
        app.add_middleware(DashboardUnavailable, reason=str(error))
        return
    app.add_middleware(
        PageSessions,
        secret=secret,
        max_age=settings.session_max_age_seconds,
        https_only=settings.session_cookie_secure,
    )
