"""The dashboard's sign-in state: signed cookie sessions, CSRF tokens, and the sign-in limiter.

Sessions are Starlette's `SessionMiddleware`: the session is a signed (itsdangerous, HMAC-SHA1 with
`MODELCYCLE_SESSION_SECRET`), timestamped cookie, HttpOnly and SameSite=Lax; past its max age the
signature no longer verifies and the browser is sent back to the sign-in page. The `/v1/` API and
`/metrics` never see it: they keep their API keys and their speed.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import structlog
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modelcycle.errors import InvalidInputError
from modelcycle.settings import Settings

log = structlog.get_logger(__name__)

COOKIE = "modelcycle_session"
SECRET_FILE = "session-secret"  # noqa: S105 - a file name, not a secret
CSRF_FIELD = "csrf_token"
API_PREFIXES = ("/v1/", "/metrics", "/healthz", "/readyz")


def session_secret(settings: Settings) -> str:
    """`MODELCYCLE_SESSION_SECRET`; in `local` only, one generated once and kept under the home
    (mode 0600, written aside then renamed), so a restart keeps everybody signed in."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if settings.environment != "local":
        raise InvalidInputError(
            f"MODELCYCLE_SESSION_SECRET is not set: the dashboard's sessions need a secret in "
            f"{settings.environment} (e.g. `openssl rand -hex 32`)"
        )
    path = Path(settings.home) / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_suffix(f".{os.getpid()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    if not path.exists():  # two processes at once: the first rename wins, both read it
        aside.replace(path)
    else:
        aside.unlink()
    return path.read_text().strip()


class PageSessions:
    """Sessions for the pages only: `/v1/`, `/metrics` and the probes pass straight through."""

    def __init__(self, app: ASGIApp, *, secret: str, max_age: int, https_only: bool):
        self.app = app
        self.with_sessions = SessionMiddleware(
            app,
            secret_key=secret,
            session_cookie=COOKIE,
            max_age=max_age,
            same_site="lax",
            https_only=https_only,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIXES):
            await self.with_sessions(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; every form carries it."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_matches(request: Request, given: object) -> bool:
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def start_session(request: Request, name: str, password_set_at: datetime) -> None:
    """A fresh session for a signed-in user (a new CSRF token, so one from before is useless)."""
    request.session.clear()
    request.session["user"] = name
    request.session["password_set_at"] = password_set_at.isoformat()
    csrf_token(request)


def session_user(request: Request) -> tuple[str, datetime] | None:
    """Who the session says signed in, and with which password; None when nobody did."""
    name, stamp = request.session.get("user"), request.session.get("password_set_at")
    if not isinstance(name, str) or not isinstance(stamp, str):
        return None
    try:
        return name, datetime.fromisoformat(stamp)
    except ValueError:
        return None


class SignInLimiter:
    """Failed sign-ins per (user name, client address) in a sliding window, in this process.

    In-process on purpose: one API process serves the dashboard (`modelcycle up`/`serve`); with
    several replicas each counts its own, so the limit is per replica. Only failures count, and
    a success clears the pair's count.
    """

    def __init__(self, max_attempts: int, window_seconds: float):
        self.max_attempts = max_attempts
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def wait_seconds(self, name: str, address: str) -> float:
        """How long the pair must wait before trying again; 0 when it may try now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent((name, address), now)
            if len(failures) < self.max_attempts:
                return 0.0
            return max(failures[0] + self.window - now, 0.0)

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures = self._recent((name, address), now)
            failures.append(now)
            if len(failures) == self.max_attempts:
                log.warning("sign-in paused after repeated failures", user=name, client=address)
            if len(self._failures) > 10_000:  # forget the oldest pairs rather than grow forever
                for stale in list(self._failures)[:1000]:
                    del self._failures[stale]

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)
