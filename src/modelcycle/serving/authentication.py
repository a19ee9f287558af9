"""Which identity an API key stands for: a configured key (MODELCYCLE_API_KEYS) or a user's.

Users' keys live in the modelcycle store, by their sha256. The API keeps every working key in
memory and re-reads them every MODELCYCLE_SERVING_KEY_REFRESH_SECONDS (a background task, whose
failures show in `/readyz`, `/v1/models` and `/metrics`), so a prediction never waits for the
database: a revoked key stops working within that time. A key the API has not seen yet (just
created) makes it re-read the keys at once, at most once a second, so a new key works at once
and a flood of made-up keys costs the store one read a second. Key uses are noted in memory and
written (`last_used_at`, to the minute) with the next read.

Without any key (none configured, none in the store) the API is open, in `local` only, and its
caller is the local admin. Whether that is so depends on the store: until the keys could be read
once, such a request gets 503 naming why, never an open door.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog

from modelcycle.access.identity import LOCAL_ADMIN, SERVICE_API_KEYS, Identity
from modelcycle.errors import ModelcycleError
from modelcycle.imports import FIRST_USE_IMPORTS
from modelcycle.serving.background import TaskHealth, run_round
from modelcycle.serving.manager import describe_error
from modelcycle.settings import Settings

if TYPE_CHECKING:
    from modelcycle.access.keys import KeyHolder
    from modelcycle.store import Store

log = structlog.get_logger(__name__)

TASK_NAME = "api_keys_poll"
USER_KEY_PREFIX = b"mc_"  # access.keys.KEY_PREFIX, without importing SQLAlchemy at start
# An unknown user-shaped key re-reads the keys at most this often (a made-up key must not turn
# every request into a database read).
MISS_RELOAD_SECONDS = 1.0


class KeysUnavailableError(ModelcycleError):
    """Who a request is depends on users' keys, and they could not be read yet (503)."""


def bearer_token(authorization: bytes | None) -> bytes | None:
    scheme, _, token = (authorization or b"").partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


class KeyDirectory:
    """The API's view of the keys: configured ones, and users' ones refreshed from the store."""

    def __init__(
        self,
        settings: Settings,
        *,
        configured: frozenset[bytes],
        health: TaskHealth,
        open_allowed: bool = True,
    ):
        self.settings = settings
        self.configured = configured
        self.health = health
        # Open (no key at all) only in local, and never where `serve` was not allowed to run open
        # (a non-loopback --host without --allow-open): revoking the last key must not open it.
        self.may_be_open = open_allowed and settings.environment == "local" and not configured
        self._holders: Mapping[str, KeyHolder] | None = None  # None until read once
        self._used: dict[int, datetime] = {}
        self._store: Store | None = None
        self._loading = threading.Lock()  # the poll's thread and a request's re-read
        self._reloading = asyncio.Lock()  # one request thread waits for the store, not many
        self._started_at = float("-inf")
        self._finished_at = float("-inf")
        self._failing: str | None = None

    @property
    def mode(self) -> str:
        """What the start-up log says about authentication."""
        if self.configured:
            return "API keys (MODELCYCLE_API_KEYS and users' keys)"
        if self.may_be_open:
            return "users' API keys; open while there are none (local)"
        return "users' API keys"

    # --- the request path (event loop) -----------------------------------------------------

    async def identity_for(self, authorization: bytes | None) -> Identity | None:
        """The caller's identity, None for a missing or wrong key (401), or a
        `KeysUnavailableError` (503) when the answer depends on keys not read yet."""
        asked_at = time.monotonic()
        found = self.known(authorization)
        if found is not None:
            return found
        token = bearer_token(authorization)
        user_shaped = token is not None and token.startswith(USER_KEY_PREFIX)
        if not user_shaped and not self.may_be_open:
            return None  # a wrong key of a keyed API: no need to ask the store
        if self._holders is None or (user_shaped and self._may_reload(asked_at)):
            async with self._reloading:
                await asyncio.to_thread(self._reload, asked_at)
            found = self._known(token)
            if found is not None:
                return found
        holders = self._holders
        if holders is None:
            raise KeysUnavailableError(
                f"cannot check API keys: users' keys not read from the store yet "
                f"({self.health.last_error or 'still reading'})"
            )
        if self.may_be_open and not holders:
            return LOCAL_ADMIN
        return None

    def _may_reload(self, asked_at: float) -> bool:
        """Checked on the loop too, so a flood of made-up keys does not queue up threads."""
        return asked_at - self._started_at >= MISS_RELOAD_SECONDS

    def known(self, authorization: bytes | None) -> Identity | None:
        """`identity_for` without waiting for anything: the caller when the keys already read
        decide it, None when they do not (a wrong key, or one the store may know)."""
        token = bearer_token(authorization)
        found = self._known(token)
        if found is not None:
            return found
        user_shaped = token is not None and token.startswith(USER_KEY_PREFIX)
        if self.may_be_open and self._holders == {} and not user_shaped:
            return LOCAL_ADMIN
        return None

    def _known(self, token: bytes | None) -> Identity | None:
        if token is None:
            return None
        if self.configured:
            # compare_digest against every key: the time taken does not tell which was close
            matched = False
            for key in self.configured:
                matched |= hmac.compare_digest(token, key)
            if matched:
                return SERVICE_API_KEYS
        holders = self._holders
        if holders and token.startswith(USER_KEY_PREFIX):
            holder = holders.get(hashlib.sha256(token).hexdigest())
            if holder is not None:
                self._used[holder.key_id] = datetime.now(UTC)
                return holder.identity
        return None

    # --- the store (worker threads) ----------------------------------------------------------

    def refresh(self) -> str | None:
        """One round of the poll: write the noted uses, re-read the keys. Never raises: the
        cause is returned (for the task's health) and logged once."""
        with self._loading:
            return self._refresh()

    def _reload(self, asked_at: float) -> None:
        """Re-read for a request, unless a read ended since it came or one began a moment ago."""
        with self._loading:
            if self._finished_at >= asked_at:
                return
            if self._holders is not None and not self._may_reload(asked_at):
                return
            run_round(self.health, self._refresh)

    def _refresh(self) -> str | None:
        self._started_at = time.monotonic()
        used, self._used = self._used, {}
        try:
            holders = self._read(used)
        except ModelcycleError as error:
            return self._failed(str(error), used)
        except Exception as error:  # noqa: BLE001 - a store or driver error must not stop the
            # poll; it is logged (once per cause), counted by the task's health and shown there
            return self._failed(describe_error(error), used, trace=error)
        finally:
            self._finished_at = time.monotonic()
        self._holders = MappingProxyType(holders)
        if self._failing is not None:
            log.info("users' API keys read again", keys=len(holders))
            self._failing = None
        return None

    def _read(self, used: Mapping[int, datetime]) -> dict[str, KeyHolder]:
        # Imported here, like the store, to keep the API's start fast.
        with FIRST_USE_IMPORTS:
            from modelcycle.access.keys import key_holders, record_key_use
            from modelcycle.store import open_store

        if self._store is None:
            self._store = open_store(self.settings)
        with self._store.session() as session:
            if used:
                record_key_use(session=session, used=used)
            return key_holders(session=session)

    def _failed(
        self, cause: str, used: Mapping[int, datetime], *, trace: Exception | None = None
    ) -> str:
        for key_id, at in used.items():  # keep the uses for the next round
            self._used[key_id] = max(at, self._used.get(key_id, at))
        if cause != self._failing:
            details: dict[str, Any] = {"exc_info": trace} if trace is not None else {}
            log.warning("users' API keys not read", error=cause, **details)
            self._failing = cause
        return cause

    def close(self) -> None:
        with self._loading:
            if self._store is not None:
                self._store.close()
                self._store = None
