"""How old a model is: when a version was trained, and the champion's age beside the newest
version's. Free of MLflow imports so the API and the alert rules can use it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

STALE_AFTER_HOURS = 36.0  # the shipped `model_stale` rule and the Prometheus rule


def trained_at_of(tag: str | None, creation_timestamp_ms: int) -> datetime:
    """The version's training tag (`modelcycle.trained_at`), else its registration time: versions
    trained before the tag existed were registered right after training."""
    if tag:
        try:
            moment = datetime.fromisoformat(tag)
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(creation_timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class ModelAge:
    """The age the stale alert is about (the champion's) and, beside it, the newest version's."""

    champion: tuple[str, datetime] | None
    newest: tuple[str, datetime] | None

    def champion_hours(self, now: datetime) -> float | None:
        return None if self.champion is None else _hours(now, self.champion[1])

    def newest_hours(self, now: datetime) -> float | None:
        return None if self.newest is None else _hours(now, self.newest[1])


def _hours(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds() / 3600
