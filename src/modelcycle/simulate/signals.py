"""Sensor values of one device over one day: a (1440, sensors) array, one row a minute.

value = baseline + device offset + daily load cycle + shared kind factor + noise, then fleet aging,
the device's anomalies (spikes, running hot) and last its faults (drift, vibration, stuck) on top;
faults last, so a stuck sensor's value stays exactly constant.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from modelcycle.simulate.fleet import KINDS, Anomaly, Fault, FleetPlan

MINUTES = 1440
FACTOR_MEMORY = 0.995  # AR(1) coefficient: the kind factors wander over hours, not minutes
DRIFT_PER_DAY = 0.35  # noise-stds a drifting sensor's baseline moves each day of fleet drift
MAX_AGING_DAYS = 90  # aging levels off, so long runs stay well inside the plausible range


def _minute_span(start: datetime, end: datetime, day_start: datetime) -> tuple[int, int]:
    first = int((start - day_start).total_seconds() // 60)
    last = int((end - day_start).total_seconds() // 60)
    return max(0, first), min(MINUTES, last)


def _healthy(plan: FleetPlan, device: int, rng: np.random.Generator) -> NDArray[np.float64]:
    model = plan.sensors
    minutes = np.arange(MINUTES)[:, None]
    cycle = np.sin(2 * np.pi * minutes / MINUTES + model.cycle_phase[None, :])
    shocks = rng.standard_normal((MINUTES, len(KINDS)))
    factors = lfilter([np.sqrt(1 - FACTOR_MEMORY**2)], [1, -FACTOR_MEMORY], shocks, axis=0)
    load = plan.device_load[device]
    values = (
        model.baseline
        + plan.device_offsets[device] * model.noise
        + model.cycle_amplitude * load * cycle
        + model.factor_loading * factors[:, model.kind]
        + model.noise * rng.standard_normal((MINUTES, len(model.kind)))
    )
    return np.asarray(values)


def device_day_rngs(
    seed: int, device: int, day_index: int
) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for a device-day's signal and its log flaws, from (seed, device, day).

    Separate streams keep the signal identical whatever the log imperfections draw, and let any
    device-day be regenerated on its own.
    """
    signal, log = np.random.SeedSequence([seed, device, day_index]).spawn(2)
    return np.random.default_rng(signal), np.random.default_rng(log)


def stuck_value(plan: FleetPlan, device: int, sensor: int) -> float:
    """Where a stuck sensor freezes: the same value on every day of the episode."""
    model = plan.sensors
    return round(
        float(model.baseline[sensor] + plan.device_offsets[device, sensor] * model.noise[sensor]), 3
    )


def _apply_fault(
    values: NDArray[np.float64],
    plan: FleetPlan,
    fault: Fault,
    day_start: datetime,
    rng: np.random.Generator,
) -> None:
    first, last = _minute_span(fault.start, fault.confirmed_at, day_start)
    if first >= last:
        return
    elapsed = (day_start - fault.start).total_seconds() / 60 + np.arange(first, last)
    progress = np.clip(elapsed / (fault.ramp_hours * 60), 0.0, 1.0)[:, None]
    sensors = list(fault.sensors)
    noise = plan.sensors.noise[sensors]
    if fault.fault_type == "drift":
        values[first:last, sensors] += fault.severity * noise * progress
    elif fault.fault_type == "vibration":
        # Total noise grows from 1x to `severity` x: add independent noise of the missing variance.
        factor = 1.0 + (fault.severity - 1.0) * progress
        extra = rng.standard_normal((last - first, len(sensors)))
        values[first:last, sensors] += noise * np.sqrt(factor**2 - 1.0) * extra
    else:
        for sensor in sensors:
            values[first:last, sensor] = stuck_value(plan, fault.device_index, sensor)


def _apply_anomaly(
    values: NDArray[np.float64], plan: FleetPlan, anomaly: Anomaly, day_start: datetime
) -> None:
    first, last = _minute_span(
        anomaly.start, anomaly.start + timedelta(minutes=anomaly.minutes), day_start
    )
    if first < last:
        sensors = list(anomaly.sensors)
        values[first:last, sensors] += anomaly.magnitude * plan.sensors.noise[sensors]


def device_day_values(
    plan: FleetPlan,
    device: int,
    day: date,
    faults: list[Fault],
    anomalies: list[Anomaly],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """The device's readings for the day, before any log imperfection."""
    values = _healthy(plan, device, rng)
    drift_start = plan.spec.drift_start
    if drift_start is not None and day >= drift_start:
        aged = plan.sensors.drifting
        days = min((day - drift_start).days + 1, MAX_AGING_DAYS)
        values[:, aged] += DRIFT_PER_DAY * days * plan.sensors.noise[aged]
    day_start = datetime.combine(day, datetime.min.time())
    for anomaly in anomalies:
        _apply_anomaly(values, plan, anomaly, day_start)
    for fault in faults:
        _apply_fault(values, plan, fault, day_start, rng)
    return values
