"""Times read back from the store: SQLite hands back naive datetimes; the store only writes UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime, whichever database it was read from."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
