"""The fleet plan: who owns which device, how sensors behave, and when faults and anomalies happen.

Everything random about the fleet is decided here, once, from the seed, so that each device-day
can then be generated on its own (in any order, in parallel) and still be reproducible.

Sensor kinds (in blocks, by sensor index): temperature (25%), pressure (20%), vibration (20%),
current (20%), flow (15%). Sensors of a kind share a slow latent factor (correlation) and follow a
daily load cycle with their own amplitude and phase.

Faults strike the fleet's weak spots, as in the field: drift hits one of a few groups of related
temperature, pressure or current sensors, vibration hits the bearing's vibration sensors, and only
a few fragile sensors get stuck. That is what makes faults learnable from hourly features: the
same sensors misbehave the same way across devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

KINDS = ("temperature", "pressure", "vibration", "current", "flow")
KIND_SHARES = (0.25, 0.20, 0.20, 0.20, 0.15)
DEVICE_TYPES = ("pump", "compressor", "turbine", "fan")
DEVICE_TYPE_SHARES = (0.4, 0.3, 0.1, 0.2)
FAULT_TYPES = ("drift", "vibration", "stuck")

# Kind: (baseline low, baseline high, noise low, noise high)
_KIND_SCALES = {
    "temperature": (40.0, 90.0, 0.5, 1.5),
    "pressure": (2.0, 12.0, 0.05, 0.2),
    "vibration": (0.5, 4.0, 0.05, 0.2),
    "current": (10.0, 60.0, 0.3, 1.0),
    "flow": (50.0, 200.0, 1.0, 3.0),
}
_TYPE_LOAD = {"pump": 1.0, "compressor": 1.15, "turbine": 1.3, "fan": 0.85}

# Tuned so that about 3-6% of device-hours are in a fault state.
FAULTS_PER_DEVICE_DAY = 0.08
# Hours until a technician confirms: typically half a day, sometimes two (log-normal, clipped).
MEDIAN_DETECTION_HOURS, MIN_DETECTION_HOURS, MAX_DETECTION_HOURS = 12.0, 2.0, 48.0
MIN_REPAIR_HOURS, MAX_REPAIR_HOURS = 2.0, 8.0
ANOMALIES_PER_DEVICE_DAY = 0.05
HOT_SHARE = 0.3  # of anomalies: an hour running hot; the rest are 5-30 minute spikes
GROUP_SIZE = 5  # sensors in a related drift group, on the bearing, or fragile


@dataclass(frozen=True)
class FleetSpec:
    """What to simulate; the defaults are the reference scale of one day."""

    devices: int = 1000
    sensors: int = 100
    days: int = 1
    start: date = date(2026, 1, 1)
    seed: int = 42
    customers: int = 20
    drift_start: date | None = None

    @property
    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def period_end(self) -> datetime:
        return datetime.combine(self.start + timedelta(days=self.days), datetime.min.time())


@dataclass(frozen=True)
class Device:
    device_id: str
    customer_id: str
    site: str
    device_type: str


@dataclass(frozen=True)
class Fault:
    """A fault episode: the signature grows from `start` until a technician confirms it.

    The technician takes the faulty part out of service at `confirmed_at` (the signature ends
    there, matching the ledger's label); the repair is done at `repaired_at`, and no new fault
    starts on the device before then.
    """

    device_index: int
    fault_type: str
    start: datetime
    confirmed_at: datetime
    repaired_at: datetime
    sensors: tuple[int, ...]
    severity: float
    ramp_hours: float


@dataclass(frozen=True)
class Anomaly:
    """Something unusual that is not a fault: a transient spike or an hour of running hot.

    Never in the ledger: a model must not call these faults, an anomaly detector may flag them.
    """

    device_index: int
    kind: str  # "spike" or "hot"
    start: datetime
    minutes: int
    sensors: tuple[int, ...]
    magnitude: float


@dataclass(frozen=True)
class SensorModel:
    kind: NDArray[np.int_]  # index into KINDS, per sensor
    baseline: NDArray[np.float64]
    noise: NDArray[np.float64]
    cycle_amplitude: NDArray[np.float64]
    cycle_phase: NDArray[np.float64]
    factor_loading: NDArray[np.float64]
    drifting: NDArray[np.bool_]  # sensors that age once the fleet drifts
    drift_groups: tuple[tuple[int, ...], ...]  # related sensors that drift together
    bearing: tuple[int, ...]  # vibration sensors a vibration fault shakes
    fragile: tuple[int, ...]  # sensors that can get stuck


@dataclass
class FleetPlan:
    spec: FleetSpec
    devices: list[Device]
    sensors: SensorModel
    device_offsets: NDArray[np.float64]  # (devices, sensors), in units of noise
    device_load: NDArray[np.float64]  # (devices,)
    faults: list[Fault] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    unreadable: set[tuple[int, int]] = field(default_factory=set)  # (device, day index)

    def ledger(self) -> list[Fault]:
        """Faults a technician confirmed within the simulated period (ground truth arrives late)."""
        end = self.spec.period_end
        return sorted(
            (f for f in self.faults if f.confirmed_at < end),
            key=lambda f: (f.confirmed_at, f.device_index),
        )


def sensor_names(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def device_id(i: int) -> str:
    return f"device-{i:04d}"


def _kinds(sensors: int) -> NDArray[np.int_]:
    bounds = np.cumsum(KIND_SHARES) * sensors
    return np.searchsorted(bounds, np.arange(sensors), side="right").clip(0, len(KINDS) - 1)


def _pick(pool: NDArray[np.int_], size: int, rng: np.random.Generator) -> tuple[int, ...]:
    chosen = rng.choice(pool, size=min(size, len(pool)), replace=False)
    return tuple(sorted(int(s) for s in chosen))


def _weak_spots(
    kind: NDArray[np.int_], rng: np.random.Generator
) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...], tuple[int, ...]]:
    """Drift groups (one per temperature, pressure and current kind), bearing and fragile sensors.

    A fleet with too few sensors of a kind falls back to any sensor, so every fault type exists.
    """
    every = np.arange(len(kind))

    def of_kind(name: str) -> NDArray[np.int_]:
        pool = np.flatnonzero(kind == KINDS.index(name))
        return pool if len(pool) else every

    groups = tuple(
        _pick(of_kind(name), GROUP_SIZE, rng) for name in ("temperature", "pressure", "current")
    )
    return groups, _pick(of_kind("vibration"), GROUP_SIZE, rng), _pick(every, GROUP_SIZE, rng)


def _sensor_model(sensors: int, rng: np.random.Generator) -> SensorModel:
    kind = _kinds(sensors)
    scales = np.array([_KIND_SCALES[KINDS[k]] for k in kind])
    noise = rng.uniform(scales[:, 2], scales[:, 3])
    baseline = rng.uniform(scales[:, 0], scales[:, 1])
    cycle_amplitude = noise * rng.uniform(1.0, 4.0, sensors)
    cycle_phase = rng.uniform(0, 2 * np.pi, sensors)
    factor_loading = noise * rng.uniform(0.5, 2.0, sensors)
    drifting = rng.random(sensors) < 0.25
    drift_groups, bearing, fragile = _weak_spots(kind, rng)
    return SensorModel(
        kind=kind,
        baseline=baseline,
        noise=noise,
        cycle_amplitude=cycle_amplitude,
        cycle_phase=cycle_phase,
        factor_loading=factor_loading,
        drifting=drifting,
        drift_groups=drift_groups,
        bearing=bearing,
        fragile=fragile,
    )


def _customers(spec: FleetSpec, rng: np.random.Generator) -> list[Device]:
    """Zipf-like customer sizes: a few large fleets, many small ones; every customer has one."""
    count = max(1, min(spec.customers, spec.devices))
    weights = 1.0 / np.arange(1, count + 1) ** 1.2
    sizes = np.ones(count, dtype=int) + rng.multinomial(
        spec.devices - count, weights / weights.sum()
    )
    owner = rng.permutation(np.repeat(np.arange(count), sizes))
    sites = rng.integers(1, 6, count)
    kinds = rng.choice(len(DEVICE_TYPES), size=spec.devices, p=DEVICE_TYPE_SHARES)
    return [
        Device(
            device_id=device_id(i),
            customer_id=f"cust-{owner[i]:02d}",
            site=f"cust-{owner[i]:02d}-site-{int(rng.integers(1, sites[owner[i]] + 1))}",
            device_type=DEVICE_TYPES[kinds[i]],
        )
        for i in range(spec.devices)
    ]


def _fault_sensors(kind: str, model: SensorModel, rng: np.random.Generator) -> tuple[int, ...]:
    if kind == "drift":
        group = model.drift_groups[int(rng.integers(len(model.drift_groups)))]
        return _pick(np.array(group), int(rng.integers(3, 6)), rng)
    if kind == "vibration":
        return _pick(np.array(model.bearing), int(rng.integers(2, 5)), rng)
    return _pick(np.array(model.fragile), int(rng.integers(1, 3)), rng)


def _fault(
    device: int, onset: float, spec: FleetSpec, model: SensorModel, rng: np.random.Generator
) -> Fault:
    """One episode; `severity` is noise-stds of drift, or the final noise factor of vibration."""
    start = datetime.combine(spec.start, datetime.min.time()) + timedelta(minutes=int(onset))
    kind = FAULT_TYPES[int(rng.integers(len(FAULT_TYPES)))]
    detection_hours = np.clip(
        rng.lognormal(np.log(MEDIAN_DETECTION_HOURS), 0.6), MIN_DETECTION_HOURS, MAX_DETECTION_HOURS
    )
    confirmed_at = start + timedelta(minutes=int(detection_hours * 60))
    return Fault(
        device_index=device,
        fault_type=kind,
        start=start,
        confirmed_at=confirmed_at,
        repaired_at=confirmed_at
        + timedelta(minutes=int(rng.uniform(MIN_REPAIR_HOURS, MAX_REPAIR_HOURS) * 60)),
        sensors=_fault_sensors(kind, model, rng),
        severity=float(rng.uniform(8.0, 14.0) if kind == "drift" else rng.uniform(2.0, 6.0)),
        ramp_hours=float(rng.uniform(1.0, 4.0)),
    )


def _faults(spec: FleetSpec, model: SensorModel, rng: np.random.Generator) -> list[Fault]:
    """Poisson onsets per device; a device is never faulty twice at once, nor before repair."""
    period_start = datetime.combine(spec.start, datetime.min.time())
    faults = []
    for device in range(spec.devices):
        free_from = period_start
        onsets = rng.uniform(0, spec.days * 1440, rng.poisson(FAULTS_PER_DEVICE_DAY * spec.days))
        for onset in np.sort(onsets):
            if period_start + timedelta(minutes=float(onset)) < free_from:
                continue
            fault = _fault(device, float(onset), spec, model, rng)
            faults.append(fault)
            free_from = fault.repaired_at
    return faults


def _anomalies(spec: FleetSpec, model: SensorModel, rng: np.random.Generator) -> list[Anomaly]:
    """Spikes on a few random sensors, or an hour of running hot (every temperature sensor)."""
    start = datetime.combine(spec.start, datetime.min.time())
    temperatures = np.flatnonzero(model.kind == KINDS.index("temperature"))
    anomalies = []
    for _ in range(rng.poisson(ANOMALIES_PER_DEVICE_DAY * spec.devices * spec.days)):
        hot = rng.random() < HOT_SHARE and len(temperatures) > 0
        anomalies.append(
            Anomaly(
                device_index=int(rng.integers(spec.devices)),
                kind="hot" if hot else "spike",
                start=start + timedelta(minutes=int(rng.integers(spec.days * 1440))),
                minutes=60 if hot else int(rng.integers(5, 31)),
                sensors=tuple(int(s) for s in temperatures)
                if hot
                else _pick(np.arange(len(model.kind)), int(rng.integers(1, 4)), rng),
                magnitude=float(rng.uniform(3.0, 5.0) if hot else rng.uniform(8.0, 15.0)),
            )
        )
    return anomalies


def _unreadable(spec: FleetSpec, rng: np.random.Generator) -> set[tuple[int, int]]:
    total = spec.devices * spec.days
    chosen = {int(i) for i in np.flatnonzero(rng.random(total) < 1 / 2000)}
    if total >= 500:
        chosen.add(int(rng.integers(total)))
    return {(i % spec.devices, i // spec.devices) for i in chosen}


def build_fleet_plan(spec: FleetSpec) -> FleetPlan:
    """The whole plan, deterministic for the spec."""
    root = np.random.SeedSequence([spec.seed, 0xF1EE7])
    fleet_rng, fault_rng, anomaly_rng, file_rng = (np.random.default_rng(s) for s in root.spawn(4))
    model = _sensor_model(spec.sensors, fleet_rng)
    devices = _customers(spec, fleet_rng)
    return FleetPlan(
        spec=spec,
        devices=devices,
        sensors=model,
        device_offsets=fleet_rng.normal(0.0, 1.5, (spec.devices, spec.sensors)),
        device_load=np.array([_TYPE_LOAD[d.device_type] for d in devices]),
        faults=_faults(spec, model, fault_rng),
        anomalies=_anomalies(spec, model, anomaly_rng),
        unreadable=_unreadable(spec, file_rng),
    )
