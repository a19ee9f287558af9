"""Writing a simulated fleet to disk: each file written aside, then renamed into place."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from modelcycle.lake import layout
from modelcycle.simulate.fleet import (
    Anomaly,
    Fault,
    FleetPlan,
    FleetSpec,
    build_fleet_plan,
    sensor_names,
)
from modelcycle.simulate.logs import day_timestamps, format_log, unreadable_content
from modelcycle.simulate.signals import device_day_rngs, device_day_values

STAMP = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class SimulationSummary:
    out_dir: Path
    days: list[date]
    devices: int
    sensors: int
    files_written: int
    faults: int
    bytes_written: int


def write_atomically(path: Path, data: bytes) -> int:
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        aside.write_bytes(data)
        aside.replace(path)
    finally:
        aside.unlink(missing_ok=True)
    return len(data)


class _DayWriter:
    """Generates and writes the device logs of one day; one instance per day."""

    def __init__(self, plan: FleetPlan, day_index: int, out_dir: Path) -> None:
        self.plan = plan
        self.day_index = day_index
        self.day = plan.spec.day_list[day_index]
        self.out_dir = out_dir
        self.folder = out_dir / layout.raw_day_folder(self.day)
        self.sensors = sensor_names(plan.spec.sensors)
        self.timestamps = day_timestamps(self.day)
        self.faults: dict[int, list[Fault]] = defaultdict(list)
        self.anomalies: dict[int, list[Anomaly]] = defaultdict(list)
        for fault in plan.faults:
            self.faults[fault.device_index].append(fault)
        for anomaly in plan.anomalies:
            self.anomalies[anomaly.device_index].append(anomaly)

    def write_device(self, device: int) -> int:
        signal_rng, log_rng = device_day_rngs(self.plan.spec.seed, device, self.day_index)
        name = self.plan.devices[device].device_id
        path = self.out_dir / layout.raw_device_log(self.day, name)
        if (device, self.day_index) in self.plan.unreadable:
            header = ",".join(["timestamp", "device_id", *self.sensors])
            return write_atomically(
                self.out_dir / layout.raw_device_log(self.day, name),
                unreadable_content(header, log_rng),
            )
        values = device_day_values(
            self.plan, device, self.day, self.faults[device], self.anomalies[device], signal_rng
        )
        text = format_log(values, self.timestamps, name, self.sensors, log_rng)
        return write_atomically(path, text.encode())


def _write_tables(plan: FleetPlan, out_dir: Path) -> int:
    devices = pl.DataFrame(
        {
            "device_id": [d.device_id for d in plan.devices],
            "customer_id": [d.customer_id for d in plan.devices],
            "site": [d.site for d in plan.devices],
            "device_type": [d.device_type for d in plan.devices],
        }
    )
    ledger = plan.ledger()
    maintenance = pl.DataFrame(
        {
            "device_id": [plan.devices[f.device_index].device_id for f in ledger],
            "fault_start": [f.start.strftime(STAMP) for f in ledger],
            "confirmed_at": [f.confirmed_at.strftime(STAMP) for f in ledger],
            "fault_type": [f.fault_type for f in ledger],
        },
        schema={c: pl.String for c in ("device_id", "fault_start", "confirmed_at", "fault_type")},
    )
    written = write_atomically(out_dir / layout.FLEET_FILE, devices.write_csv().encode())
    written += _write_truth(plan, out_dir)
    return written + write_atomically(
        out_dir / layout.LEDGER_FILE, maintenance.write_csv().encode()
    )


def _write_truth(plan: FleetPlan, out_dir: Path) -> int:
    """What the simulator injected, with the span its signature is in the data.

    Unlike the ledger this holds every fault (confirmed or not, `end` clipped to the period) and
    every anomaly: the truth an anomaly detector is measured against, never a training label.
    """
    end = plan.spec.period_end
    rows = [
        (f.device_index, f.fault_type, f.start, min(f.confirmed_at, end), f.sensors)
        for f in plan.faults
    ] + [
        (
            a.device_index,
            a.kind,
            a.start,
            min(a.start + timedelta(minutes=a.minutes), end),
            a.sensors,
        )
        for a in plan.anomalies
    ]
    rows.sort(key=lambda r: (r[2], r[0]))
    names = sensor_names(plan.spec.sensors)
    truth = pl.DataFrame(
        {
            "device_id": [plan.devices[r[0]].device_id for r in rows],
            "kind": [r[1] for r in rows],
            "start": [r[2].strftime(STAMP) for r in rows],
            "end": [r[3].strftime(STAMP) for r in rows],
            "sensors": [" ".join(names[s] for s in r[4]) for r in rows],
        },
        schema={c: pl.String for c in ("device_id", "kind", "start", "end", "sensors")},
    )
    path = out_dir / layout.TRUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, truth.write_csv().encode())


def simulate_fleet(
    spec: FleetSpec, out_dir: Path, on_progress: Callable[[int], None] | None = None
) -> SimulationSummary:
    """Write the fleet's logs, devices.csv and maintenance.csv under `out_dir`."""
    plan = build_fleet_plan(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = files = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for day_index in range(spec.days):
            writer = _DayWriter(plan, day_index, out_dir)
            writer.folder.mkdir(parents=True, exist_ok=True)
            for size in pool.map(writer.write_device, range(spec.devices)):
                written += size
                files += 1
                if on_progress:
                    on_progress(1)
    written += _write_tables(plan, out_dir)
    return SimulationSummary(
        out_dir=out_dir,
        days=spec.day_list,
        devices=spec.devices,
        sensors=spec.sensors,
        files_written=files,
        faults=len(plan.ledger()),
        bytes_written=written,
    )
