"""Hand-written raw logs for ingest tests: each test states exactly which lines are bad.

`log_bytes` writes the same lines the way real devices do (CRLF or CR line endings, a BOM, no
final newline), so a test can put the exact bytes of a variant on disk with `write_raw`.
"""

from __future__ import annotations

import gzip
from datetime import date, datetime, timedelta
from pathlib import Path

SENSORS = ("s000", "s001", "s002")
HEADER = "timestamp,device_id," + ",".join(SENSORS)
DAY = date(2026, 3, 1)
UTF8_BOM = b"\xef\xbb\xbf"


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


def log_bytes(
    lines: list[str],
    *,
    newline: str = "\n",
    final_newline: bool = True,
    bom: bool = False,
    header: str | None = HEADER,
) -> bytes:
    """A log's exact bytes: the header (unless None) and `lines`, joined by `newline`."""
    text = newline.join(([header] if header is not None else []) + lines)
    data = (text + (newline if final_newline else "")).encode()
    return UTF8_BOM + data if bom else data


def write_raw(
    raw_root: Path, name: str, data: bytes, day: date = DAY, *, gzipped: bool = False
) -> Path:
    """Put `data` on disk as the raw file `name` (gzip-compressed first when asked)."""
    folder = raw_root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def write_healthy_day(raw_root: Path, devices: int, minutes: int = 60, day: date = DAY) -> None:
    for index in range(devices):
        device = f"device-{index:04d}"
        write_log(raw_root, device, [good_line(device, m, day) for m in range(minutes)], day)
