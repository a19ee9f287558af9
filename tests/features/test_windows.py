"""Window features: what a fault looks like in them, and one code path for lake and request."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modelcycle.features import FeatureSpec, compute_features
from modelcycle.features.store import build_day_features, load_features, readings_spec
from modelcycle.lake.ingest import ingest_day
from modelcycle.storage import open_store
from tests.lake.rawlogs import DAY, write_healthy_day

SPEC = FeatureSpec(sensors=("s000", "s001"))


def _readings(values: dict[str, list[float | None]], device: str = "device-0000") -> pa.Table:
    n = len(next(iter(values.values())))
    start = datetime(2026, 3, 1, 10, 0)
    return pa.table(
        {
            "timestamp": pa.array(
                [start + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")
            ),
            "device_id": [device] * n,
            **{name: pa.array(column, pa.float32()) for name, column in values.items()},
        }
    )


def test_stuck_sensor_has_zero_std_and_moving_one_does_not() -> None:
    features = compute_features(
        _readings({"s000": [5.0] * 60, "s001": [float(i) for i in range(60)]}), SPEC
    ).to_pylist()
    (window,) = features
    assert window["s000_std"] == 0.0
    assert window["s001_std"] > 10
    assert window["s001_delta"] == pytest.approx(59.0)
    assert window["s001_min"] == 0.0 and window["s001_max"] == 59.0
    assert window["n_readings"] == 60


def test_windows_are_clock_hours_per_device() -> None:
    table = compute_features(_readings({"s000": [1.0] * 90, "s001": [2.0] * 90}), SPEC)
    starts = table.column("window_start").to_pylist()
    assert starts == [datetime(2026, 3, 1, 10), datetime(2026, 3, 1, 11)]
    assert table.column("n_readings").to_pylist() == [60.0, 30.0]


def test_missing_values_stay_missing_not_zero() -> None:
    table = compute_features(_readings({"s000": [None] * 60, "s001": [1.0] * 60}), SPEC)
    (window,) = table.to_pylist()
    assert window["s000_mean"] is None
    assert window["s000_delta"] is None


def test_feature_names_round_trip_and_refuse_wrong_order() -> None:
    assert FeatureSpec.from_feature_names(SPEC.feature_names) == SPEC
    with pytest.raises(ValueError, match="order"):
        FeatureSpec.from_feature_names(list(reversed(SPEC.feature_names)))


def test_request_features_equal_lake_features(tmp_path: Path) -> None:
    """Serving computes features with the same code as training: same input, same numbers."""
    write_healthy_day(tmp_path / "raw", devices=2, minutes=150)
    lake = open_store(str(tmp_path / "lake"))
    ingest_day(DAY, raw=open_store(str(tmp_path / "raw")), lake=lake)
    spec = readings_spec(lake, DAY)
    from_lake = build_day_features(lake, DAY, spec)
    import pyarrow.parquet as pq

    readings = pq.read_table(tmp_path / "lake" / "readings" / f"date={DAY}" / "part-0.parquet")
    from_request = compute_features(readings, spec)
    assert from_request.equals(from_lake)
    again = load_features(lake, [DAY], spec)
    for name in spec.feature_names:
        assert np.allclose(
            again.column(name).to_numpy(), from_lake.column(name).to_numpy(), equal_nan=True
        )
