"""API keys: each belongs to a user, is shown once, is kept only as its sha256, can be revoked.

A key is `mc_` and 32 random bytes in URL-safe base64: with that much entropy a plain sha256 is
what token stores use (GitHub's among them); a slow password hash would buy nothing and cost every
request. The first 8 characters are kept in clear as the key's `prefix`, so lists and logs can
name a key without being able to use it. Every function takes the caller's session (keyword
`session`) and commits nothing itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from modelcycle.access.identity import Identity, UnknownApiKeyError
from modelcycle.access.users import active_user, identity_of, utc
from modelcycle.errors import InvalidInputError
from modelcycle.store.tables import ApiKey, User

KEY_PREFIX = "mc_"
PREFIX_LENGTH = 8
LABEL_MAX_CHARS = 200
# last_used_at is for people ("is this key still in use?"): a minute is precise enough, and it
# spares the store a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The sha256 (hex) a key is stored and looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def is_user_key(token: str) -> bool:
    """True when `token` has the form of a user's key (only such tokens are looked up)."""
    return token.startswith(KEY_PREFIX)


@dataclass(frozen=True)
class ApiKeyRecord:
    """A key as `users key list` shows it: never the key itself."""

    id: int
    user: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class KeyHolder:
    """Who a working key belongs to, as the API keeps it in memory."""

    key_id: int
    identity: Identity


def _record(key: ApiKey, user_name: str) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key.id,
        user=user_name,
        prefix=key.prefix,
        label=key.label,
        created_at=utc(key.created_at),
        revoked_at=utc(key.revoked_at) if key.revoked_at else None,
        last_used_at=utc(key.last_used_at) if key.last_used_at else None,
    )


def create_api_key(*, session: Session, user: str, label: str = "") -> str:
    """A new key for an active user; the plaintext is returned here and never stored."""
    if "\n" in label or len(label) > LABEL_MAX_CHARS:
        raise InvalidInputError(f"key label: one line of at most {LABEL_MAX_CHARS} characters")
    owner = active_user(session, user)
    key = generate_key()
    session.add(
        ApiKey(
            user_id=owner.id,
            prefix=key[:PREFIX_LENGTH],
            key_hash=hash_key(key),
            label=label.strip(),
            created_at=datetime.now(UTC),
        )
    )
    session.flush()
    return key


def identity_for_key(*, session: Session, key: str, now: datetime | None = None) -> Identity | None:
    """Whose key this is, or None: unknown, revoked, or its user removed. Notes the use."""
    if not is_user_key(key):
        return None
    digest = hash_key(key)
    row = session.execute(
        select(ApiKey, User).join(User, ApiKey.user_id == User.id).where(ApiKey.key_hash == digest)
    ).first()
    if row is None:
        return None
    api_key, user = row.tuple()
    # The row was found by its hash; compare again in constant time all the same.
    if not hmac.compare_digest(api_key.key_hash, digest):
        return None
    if api_key.revoked_at is not None or user.removed_at is not None:
        return None
    record_key_use(session=session, used={api_key.id: now or datetime.now(UTC)})
    return identity_of(user)


def key_holders(*, session: Session) -> dict[str, KeyHolder]:
    """Every working key (not revoked, its user not removed), by hash: what the API loads."""
    rows = session.execute(
        select(ApiKey.id, ApiKey.key_hash, User)
        .join(User, ApiKey.user_id == User.id)
        .where(ApiKey.revoked_at.is_(None), User.removed_at.is_(None))
    )
    return {digest: KeyHolder(key_id, identity_of(user)) for key_id, digest, user in rows}


def record_key_use(*, session: Session, used: Mapping[int, datetime]) -> None:
    """Set last_used_at of these keys, unless it is already less than a minute older."""
    for key_id, at in used.items():
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at <= at - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=at)
            # "evaluate" would compare SQLite's naive times with aware ones in Python
            .execution_options(synchronize_session="fetch")
        )


def list_api_keys(
    *, session: Session, user: str | None = None, include_revoked: bool = False
) -> list[ApiKeyRecord]:
    """Keys, newest first; only one user's when `user` is given (a removed user has none)."""
    query = select(ApiKey, User.name).join(User, ApiKey.user_id == User.id)
    if user is not None:
        query = query.where(User.id == active_user(session, user).id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    query = query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    return [_record(key, name) for key, name in session.execute(query)]


def revoke_api_key(*, session: Session, key: str) -> ApiKeyRecord:
    """Revoke a key named by its id (`users key list`), its prefix, or the whole key."""
    api_key, owner = _find(session, key.strip())
    if api_key.revoked_at is not None:
        raise InvalidInputError(
            f"API key {api_key.id} ({api_key.prefix}…, {owner}) was already revoked on "
            f"{utc(api_key.revoked_at):%Y-%m-%d %H:%M} UTC"
        )
    api_key.revoked_at = datetime.now(UTC)
    return _record(api_key, owner)


def _find(session: Session, named: str) -> tuple[ApiKey, str]:
    query = select(ApiKey, User.name).join(User, ApiKey.user_id == User.id)
    if named.isdigit():
        rows = session.execute(query.where(ApiKey.id == int(named))).all()
    elif is_user_key(named) and len(named) > PREFIX_LENGTH:
        rows = session.execute(query.where(ApiKey.key_hash == hash_key(named))).all()
    elif is_user_key(named):
        # The working key with that prefix; else the newest revoked one, to say it is revoked.
        rows = session.execute(query.where(ApiKey.prefix == named).order_by(ApiKey.id)).all()
        active = [row for row in rows if row.tuple()[0].revoked_at is None]
        if len(active) > 1:
            ids = ", ".join(str(row.tuple()[0].id) for row in active)
            raise InvalidInputError(f"prefix {named} names {len(active)} keys ({ids}): give the id")
        rows = active or rows[-1:]
    else:
        raise InvalidInputError(
            f"{named!r}: give a key's id (see `modelcycle users key list`) or its prefix (mc_…)"
        )
    if not rows:
        shown = f"{named[:PREFIX_LENGTH]}…" if len(named) > PREFIX_LENGTH else named  # no secret
        raise UnknownApiKeyError(f"no API key {shown} (see `modelcycle users key list --all`)")
    api_key, owner = rows[0].tuple()
    return api_key, owner
