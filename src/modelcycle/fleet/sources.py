"""Where the customer view reads from: the fleet register, the lake's scores and features, alerts.

Every read is scoped to one customer's devices before anything leaves this package; a device of
another customer is indistinguishable from one that does not exist (`DeviceNotFoundError`).
Polars, the day reads and the store's tables are imported by the first read, not with this
module: the API declares its fleet routes with `FleetSources` and starts without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from modelcycle.errors import DataNotFoundError
from modelcycle.storage import ObjectStore

if TYPE_CHECKING:
    import polars as pl

    from modelcycle.fleet.day_reads import DayReads
    from modelcycle.store import Store

_SCORED_DAY = re.compile(r"date=(\d{4}-\d{2}-\d{2})/")


class DeviceNotFoundError(DataNotFoundError):
    """No such device for this customer: the same answer whether it exists elsewhere or not."""


def _day_reads() -> DayReads:
    from modelcycle.fleet.day_reads import DayReads

    return DayReads()


@dataclass(frozen=True)
class FleetSources:
    """The stores the customer view reads, and the two models' names and decision thresholds
    (what training records as `decision_threshold`: 0 for the detector, 0.5 for the classifier)."""

    lake: ObjectStore
    raw: ObjectStore
    store: Store
    anomaly_model: str
    fault_model: str
    anomaly_threshold: float = 0.0
    fault_threshold: float = 0.5
    # What the pages derive from each day's objects, computed once per object version.
    reads: DayReads = field(default_factory=_day_reads, compare=False)


def customer_register(sources: FleetSources, customer_id: str) -> pl.DataFrame:
    """device_id, site, device_type of the customer's devices (empty for an unknown customer)."""
    import polars as pl

    fleet = sources.reads.register(sources.raw)
    return fleet.filter(pl.col("customer_id") == customer_id).select(
        "device_id", "site", "device_type"
    )


def scored_days(lake: ObjectStore, model: str) -> list[date]:
    if lake.is_local:  # fsspec's local glob walks every folder below the root: 80 ms a page
        folder = Path(lake.path("scores"))
        keys = [f"{p.parent.name}/" for p in folder.glob(f"date=*/{model}.parquet")]
    else:
        keys = lake.glob(f"scores/date=*/{model}.parquet")
    found = (_SCORED_DAY.search(key) for key in keys)
    return sorted(date.fromisoformat(m.group(1)) for m in found if m)


def firing_device_alerts(store: Store, devices: list[str] | None = None) -> pl.DataFrame:
    """Firing alerts about devices (key `<kind>:<device_id>`), optionally only of `devices`."""
    import polars as pl
    from sqlalchemy import select

    from modelcycle.store.tables import AlertState

    with store.session() as session:
        rows = session.execute(
            select(
                AlertState.key,
                AlertState.kind,
                AlertState.severity,
                AlertState.summary,
                AlertState.first_fired_at,
            ).where(AlertState.status == "firing", AlertState.key.like("%:device-%"))
        ).all()
    frame = pl.DataFrame(
        [tuple(r) for r in rows],
        schema={
            "key": pl.String,
            "kind": pl.String,
            "severity": pl.String,
            "summary": pl.String,
            "first_fired_at": pl.Datetime("us"),
        },
        orient="row",
    ).with_columns(device_id=pl.col("key").str.split_exact(":", 1).struct.field("field_1"))
    return frame if devices is None else frame.filter(pl.col("device_id").is_in(devices))
