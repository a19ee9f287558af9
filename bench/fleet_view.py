"""The customer view's core at 1000 devices: the device list and a device's page, timed in-process.

Setup (not timed): `--home` holds a simulated fleet already ingested and scored for its last day
by both models (lake/scores/date=D/), and a migrated store. Measured: `device_page` for the
largest customer with each filter and sort a page offers, and `device_detail` for its devices,
each `--repeats` times; p50/p95 in milliseconds and the JSON size of each answer. Results go to
docs/benchmarks.md by hand (the numbers depend on the fleet built, see the section there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from modelcycle.fleet.detail import device_detail
from modelcycle.fleet.devices import device_page
from modelcycle.fleet.query import DeviceQuery, DeviceStatus
from modelcycle.fleet.sources import FleetSources
from modelcycle.lake.fleet import read_fleet
from modelcycle.settings import Settings
from modelcycle.storage import open_store as open_object_store
from modelcycle.store import open_store


def _timed(action: Callable[[], Any], repeats: int) -> tuple[float, float, int]:
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = action()
        times.append((time.perf_counter() - started) * 1000)
        size = len(json.dumps(answer, default=str))
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], size


def _page(sources: FleetSources, customer: str, query: DeviceQuery) -> dict[str, Any]:
    return device_page(sources, customer, query).__dict__


def _detail(sources: FleetSources, customer: str, device: str, days: int) -> dict[str, Any]:
    return device_detail(sources, customer, device, days=days).__dict__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    settings = Settings(home=args.home, database_url=f"sqlite:///{args.home / 'store.db'}")
    raw = open_object_store(str(args.home / "raw"))
    sources = FleetSources(
        lake=open_object_store(str(args.home / "lake")),
        raw=raw,
        store=open_store(settings),
        anomaly_model=settings.anomaly_model_name,
        fault_model=settings.classifier_model_name,
    )
    owners = Counter(read_fleet(raw).column("customer_id").to_pylist())
    customer, devices = owners.most_common(1)[0]
    print(f"{sum(owners.values())} devices; largest customer {customer} with {devices}")
    queries = {
        "list, first page": DeviceQuery(),
        "list, anomalous": DeviceQuery(status=DeviceStatus.ANOMALOUS),
        "list, -anomaly_score": DeviceQuery(sort="-anomaly_score"),
        "list, search": DeviceQuery(search="device-01"),
        "list, page 3 of 20": DeviceQuery(page=3, page_size=20),
    }
    for label, query in queries.items():
        p50, p95, size = _timed(partial(_page, sources, customer, query), args.repeats)
        print(f"{label:24} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {size / 1024:6.1f} KiB")
    first = device_page(sources, customer, DeviceQuery()).devices[0]["device_id"]
    for days in (1, 7):
        p50, p95, size = _timed(partial(_detail, sources, customer, first, days), args.repeats)
        label = f"detail, {days} day(s)"
        print(f"{label:24} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {size / 1024:6.1f} KiB")
    sources.store.close()


if __name__ == "__main__":
    main()
