"""What a channel sends: one alert event, rendered as JSON, Slack text or an email."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

EventKind = Literal["firing", "reminder", "resolved", "test", "approval_needed"]


@dataclass(frozen=True)
class AlertMessage:
    event: EventKind
    key: str
    rule: str
    kind: str
    severity: str
    summary: str
    at: datetime
    customer_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data

    @property
    def title(self) -> str:
        marker = {
            "firing": "FIRING",
            "reminder": "STILL FIRING",
            "resolved": "RESOLVED",
            "approval_needed": "APPROVAL NEEDED",
        }
        return f"[{marker.get(self.event, self.event.upper())}] {self.summary}"
