"""What a caller may ask of the customer view: statuses, sort keys, page and history limits.

Kept apart from the reads (polars, pyarrow, the store) so that the API declares its fleet routes
without importing them: the prediction API starts faster and the readers load on the first page.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelcycle.errors import InvalidInputError

MAX_PAGE_SIZE = 200
MAX_DAYS = 20  # x 24 hourly points: under 500 per series


class DeviceStatus(StrEnum):
    HEALTHY = "healthy"
    ANOMALOUS = "anomalous"
    PREDICTED_FAULTY = "predicted_faulty"
    UNSCORED = "unscored"


SORT_KEYS = ("device_id", "status", "anomaly_score", "fault_probability", "site", "alerts")


@dataclass(frozen=True)
class DeviceQuery:
    """What the list shows: `sort` is a key of SORT_KEYS, `-key` for descending; pages from 1."""

    status: DeviceStatus | None = None
    search: str = ""
    sort: str = "device_id"
    page: int = 1
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.sort.removeprefix("-") not in SORT_KEYS:
            raise InvalidInputError(
                f"sort: {self.sort!r} is not one of {', '.join(SORT_KEYS)} (prefix - to reverse)"
            )
        if self.page < 1:
            raise InvalidInputError(f"page: {self.page} is below 1")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidInputError(f"page_size: {self.page_size} is not in 1..{MAX_PAGE_SIZE}")
