"""What faults and anomalies look like: visible in the logs, and learnable from hourly windows.

Each device-day can be regenerated without its faults or anomalies (same seed, same healthy
signal), so a test can compare the written log against the signal the device would have had.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from modelcycle.simulate import FleetPlan, FleetSpec, build_fleet_plan, device_id, simulate_fleet
from modelcycle.simulate.fleet import Anomaly, Fault
from modelcycle.simulate.signals import device_day_rngs, device_day_values

FLEET = FleetSpec(devices=120, sensors=16, days=6, seed=21)
Matrix = NDArray[np.float64]


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    simulate_fleet(FLEET, root)
    return root


@pytest.fixture(scope="module")
def plan() -> FleetPlan:
    return build_fleet_plan(FLEET)


def _logged(root: Path, device: int, day_start: datetime) -> Matrix:
    """The log as a (1440, sensors) array; missing minutes and unreadable values are NaN."""
    sensors = [f"s{i:03d}" for i in range(FLEET.sensors)]
    frame = (
        pl.read_csv(
            root / f"{day_start.date()}" / f"{device_id(device)}.csv",
            ignore_errors=True,
            truncate_ragged_lines=True,
            schema_overrides={s: pl.Float64 for s in sensors},
        )
        .with_columns(pl.col("timestamp").str.to_datetime(strict=False))
        .with_columns(minute=(pl.col("timestamp") - day_start).dt.total_minutes())
        .filter(pl.col("minute").is_between(0, 1439))
        .unique("minute", keep="first")
    )
    values = np.full((1440, FLEET.sensors), np.nan)
    values[frame["minute"].to_numpy()] = frame.select(sensors).to_numpy()
    values[values == -9999.0] = np.nan
    return values


def _regenerated(
    plan: FleetPlan, device: int, day_start: datetime, faults: list[Fault], anomalies: list[Anomaly]
) -> Matrix:
    day_index = (day_start.date() - FLEET.start).days
    signal_rng, _ = device_day_rngs(FLEET.seed, device, day_index)
    return device_day_values(plan, device, day_start.date(), faults, anomalies, signal_rng)


def _same_day_fault(plan: FleetPlan, kind: str) -> Fault:
    """A confirmed fault of `kind` starting after 02:00, lasting 5+ hours within one day."""
    return next(
        f
        for f in plan.ledger()
        if f.fault_type == kind
        and f.start.date() == f.confirmed_at.date()
        and f.start.hour >= 2
        and f.confirmed_at - f.start > timedelta(hours=5)
    )


def _minute(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def _device_anomalies(plan: FleetPlan, device: int) -> list[Anomaly]:
    return [a for a in plan.anomalies if a.device_index == device]


def _fault_and_healthy(
    root: Path, plan: FleetPlan, fault: Fault
) -> tuple[Matrix, Matrix, int, int]:
    day_start = datetime.combine(fault.start.date(), datetime.min.time())
    device = fault.device_index
    logged = _logged(root, device, day_start)
    healthy = _regenerated(plan, device, day_start, [], _device_anomalies(plan, device))
    return logged, healthy, _minute(fault.start), _minute(fault.confirmed_at)


def test_stuck_sensor_reads_one_value_until_confirmed(fleet_dir: Path, plan: FleetPlan) -> None:
    fault = _same_day_fault(plan, "stuck")
    logged, _, first, last = _fault_and_healthy(fleet_dir, plan, fault)
    for sensor in fault.sensors:
        during = logged[first + 1 : last, sensor]
        assert np.unique(during[~np.isnan(during)]).size == 1
        assert np.nanmax(logged[last - 60 : last, sensor]) == np.nanmin(
            logged[last - 60 : last, sensor]
        )
        assert np.unique(logged[first - 60 : first, sensor]).size > 30


def test_vibration_fault_raises_the_noise(fleet_dir: Path, plan: FleetPlan) -> None:
    fault = _same_day_fault(plan, "vibration")
    logged, _, first, last = _fault_and_healthy(fleet_dir, plan, fault)
    for sensor in fault.sensors:
        before = np.diff(logged[first - 60 : first, sensor])
        late = np.diff(logged[last - 60 : last, sensor])
        assert np.nanstd(late) > 1.8 * np.nanstd(before)


def test_drift_fault_moves_related_sensors_by_several_noise_stds(
    fleet_dir: Path, plan: FleetPlan
) -> None:
    fault = _same_day_fault(plan, "drift")
    logged, healthy, first, last = _fault_and_healthy(fleet_dir, plan, fault)
    moved = logged - healthy
    noise = plan.sensors.noise[list(fault.sensors)]
    assert np.nanmax(np.abs(moved[:first])) < 0.002  # identical before, up to rounding
    assert (np.nanmean(moved[last - 60 : last, list(fault.sensors)], axis=0) > 6 * noise).all()
    assert len(set(plan.sensors.kind[list(fault.sensors)])) == 1  # related: one kind


def test_anomalies_show_in_the_logs_but_never_in_the_ledger(
    fleet_dir: Path, plan: FleetPlan
) -> None:
    assert {a.kind for a in plan.anomalies} == {"spike", "hot"}
    spike = next(
        a
        for a in plan.anomalies
        if a.kind == "spike" and a.start.date() == (a.start + timedelta(minutes=a.minutes)).date()
    )
    day_start = datetime.combine(spike.start.date(), datetime.min.time())
    device = spike.device_index
    faults = [f for f in plan.faults if f.device_index == device]
    shifted = _logged(fleet_dir, device, day_start) - _regenerated(
        plan, device, day_start, faults, []
    )
    first = _minute(spike.start)
    window = shifted[first : first + spike.minutes, list(spike.sensors)]
    assert (np.nanmin(window, axis=0) > 7 * plan.sensors.noise[list(spike.sensors)]).all()

    ledger = pl.read_csv(fleet_dir / "maintenance.csv")
    stamp = "%Y-%m-%d %H:%M:%S"
    assert ledger.rows() == [
        (device_id(f.device_index), f"{f.start:{stamp}}", f"{f.confirmed_at:{stamp}}", f.fault_type)
        for f in plan.ledger()
    ]
    fault_starts = {(f.device_index, f.start) for f in plan.faults}
    assert not any((a.device_index, a.start) in fault_starts for a in plan.anomalies)


def test_fleet_aging_shifts_some_baselines_a_little_more_each_day() -> None:
    spec = FleetSpec(devices=2, sensors=20, days=4, seed=3)
    aging = build_fleet_plan(FleetSpec(**{**spec.__dict__, "drift_start": spec.start}))
    fresh = build_fleet_plan(spec)
    shifts = []
    for day_index, day in enumerate(spec.day_list):
        values = [
            device_day_values(p, 0, day, [], [], device_day_rngs(spec.seed, 0, day_index)[0])
            for p in (aging, fresh)
        ]
        shifts.append((values[0] - values[1]).mean(axis=0))
    shift = np.array(shifts)
    drifting = aging.sensors.drifting
    assert drifting.any() and not drifting.all()
    assert np.allclose(shift[:, ~drifting], 0.0)
    assert (np.diff(shift[:, drifting], axis=0) > 0).all()


def _hourly_features(values: Matrix) -> Matrix:
    """Per sensor and clock hour: mean, population std, min, max, last minus first."""
    hours = values.reshape(24, 60, -1)
    stats = [hours.mean(1), hours.std(1), hours.min(1), hours.max(1), hours[:, -1] - hours[:, 0]]
    return np.concatenate(stats, axis=1)


def _fault_hours(plan: FleetPlan, spec: FleetSpec) -> NDArray[np.int_]:
    """(devices, hours) labels: 1 where an hour overlaps a ledger fault, as training labels it."""
    labels = np.zeros((spec.devices, spec.days * 24), dtype=int)
    origin = datetime.combine(spec.start, datetime.min.time())
    for fault in plan.ledger():
        first = int((fault.start - origin).total_seconds() // 3600)
        last = int(np.ceil((fault.confirmed_at - origin).total_seconds() / 3600))
        labels[fault.device_index, first:last] = 1
    return labels


def test_faults_are_learnable_from_hourly_window_features() -> None:
    spec = FleetSpec(devices=150, sensors=16, days=8, seed=5)
    plan = build_fleet_plan(spec)
    features = np.stack(
        [
            np.concatenate(
                [
                    _hourly_features(
                        device_day_values(
                            plan,
                            device,
                            day,
                            [f for f in plan.faults if f.device_index == device],
                            _device_anomalies(plan, device),
                            device_day_rngs(spec.seed, device, day_index)[0],
                        )
                    )
                    for day_index, day in enumerate(spec.day_list)
                ]
            )
            for device in range(spec.devices)
        ]
    )
    labels = _fault_hours(plan, spec)
    assert 0.02 < labels.mean() < 0.07
    train = np.arange(spec.devices) % 3 != 0  # unseen devices for the test
    flat = features.shape[-1]
    model = lgb.LGBMClassifier(n_estimators=150, verbose=-1, random_state=0)
    model.fit(features[train].reshape(-1, flat), labels[train].ravel())
    scores = np.asarray(model.predict_proba(features[~train].reshape(-1, flat)))[:, 1]
    assert roc_auc_score(labels[~train].ravel(), scores) > 0.9


def test_healthy_values_stay_well_inside_the_ingest_range() -> None:
    spec = FleetSpec(devices=20, sensors=100, days=1, drift_start=FleetSpec().start)
    plan = build_fleet_plan(spec)
    for device in range(spec.devices):
        rng = device_day_rngs(spec.seed, device, 0)[0]
        values = device_day_values(plan, device, spec.start, [], [], rng)
        assert np.abs(values).max() < 500
