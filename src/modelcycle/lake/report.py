"""The ingest report: what was read, written and quarantined for a day, and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class IngestReport:
    """Counts that always balance, checked per file before the day is published.

    `lines_read` is counted on the bytes of the ingested files, not by the CSV parser:
    lines_read == header_lines + blank_lines + rows_read, and
    rows_read == rows_written + rows_quarantined.
    """

    date: str
    raw_url: str
    partition_url: str
    files_seen: int = 0
    files_ingested: int = 0
    files_quarantined: int = 0
    lines_read: int = 0
    header_lines: int = 0
    blank_lines: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    devices: int = 0
    sensors: int = 0
    row_reasons: dict[str, int] = field(default_factory=dict)
    file_reasons: dict[str, int] = field(default_factory=dict)
    file_variants: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def balanced(self) -> bool:
        return (
            self.lines_read == self.header_lines + self.blank_lines + self.rows_read
            and self.rows_read == self.rows_written + self.rows_quarantined
            and self.files_seen == self.files_ingested + self.files_quarantined
        )

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IngestReport:
        return cls(**json.loads(text))
