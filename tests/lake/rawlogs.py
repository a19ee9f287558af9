"""Hand-written raw logs for ingest tests: each test states exactly which lines are bad."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

SENSORS = ("s000", "s001", "s002")
HEADER = "timestamp,device_id," + ",".join(SENSORS)
DAY = date(2026, 3, 1)


def good_line(device: str, minute: int, day: date = DAY, value: float = 10.0) -> str:
    stamp = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    values = ",".join(f"{value + i:.3f}" for i in range(len(SENSORS)))
    return f"{stamp:%Y-%m-%d %H:%M:%S},{device},{values}"


def write_log(raw_root: Path, device: str, lines: list[str], day: date = DAY) -> Path:
    folder = raw_root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device}.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def write_healthy_day(raw_root: Path, devices: int, minutes: int = 60, day: date = DAY) -> None:
    for index in range(devices):
        device = f"device-{index:04d}"
        write_log(raw_root, device, [good_line(device, m, day) for m in range(minutes)], day)
