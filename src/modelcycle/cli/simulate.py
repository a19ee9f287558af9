"""`modelcycle simulate`: write a simulated fleet's logs, device list and maintenance ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcycle.cli.context import advance, progress_bar, stdout
from modelcycle.errors import InvalidInputError
from modelcycle.folders import not_a_folder_reason
from modelcycle.lake.layout import parse_day


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the raw logs into.")],
    devices: Annotated[int, typer.Option("--devices", min=1, max=9999, help="Fleet size.")] = 1000,
    sensors: Annotated[
        int, typer.Option("--sensors", min=8, max=999, help="Sensors per device.")
    ] = 100,
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="Days to simulate.")] = 1,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2026-01-01",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 42,
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Customers owning the fleet.")
    ] = 20,
    drift_start: Annotated[
        str | None,
        typer.Option("--drift-start", help="From this day on, some sensors age (baselines drift)."),
    ] = None,
) -> None:
    """Simulate a fleet of devices writing sensor logs, one row a minute.

    Sensors are temperature, pressure, vibration, current and flow channels,
    each with its own baseline and noise, a daily load cycle, and a slow
    factor shared with sensors of its kind; devices differ by type and offset.

    Faults develop over hours until a technician confirms them: drift
    (related sensors ramp away), vibration (noise grows 2-6x) and stuck
    sensors (a frozen value). Anomalies that are not faults happen too:
    short spikes and an hour of running hot.

    Logs carry the flaws of the field: missing minutes, empty fields,
    duplicated, truncated and garbled lines, -9999 error codes, clock skew
    and, rarely, an unreadable file.

    Writes DIR/YYYY-MM-DD/device-NNNN.csv, DIR/devices.csv and
    DIR/maintenance.csv, which lists only faults confirmed within the
    period: ground truth arrives late. Same seed, same bytes.
    """
    reason = not_a_folder_reason(out)
    if reason is not None:  # refused before seconds of imports and a half-written fleet
        raise InvalidInputError(f"--out {reason}")
    from modelcycle.simulate import FleetSpec, simulate_fleet  # SciPy: seconds to import

    spec = FleetSpec(
        devices=devices,
        sensors=sensors,
        days=days,
        start=parse_day(start, option="--start"),
        seed=seed,
        customers=customers,
        drift_start=parse_day(drift_start, option="--drift-start") if drift_start else None,
    )
    with progress_bar("simulate", total=devices * days) as progress:
        summary = simulate_fleet(spec, out, on_progress=lambda n: advance(progress, n))
    megabytes = summary.bytes_written / 1e6
    stdout.print(
        f"wrote {summary.files_written:,} device logs ({megabytes:,.1f} MB) "
        f"for {days} day(s) under {out}\n"
        f"fleet: {out / 'devices.csv'}\n"
        f"ledger: {out / 'maintenance.csv'} ({summary.faults} confirmed faults)",
        soft_wrap=True,
        highlight=False,
    )
