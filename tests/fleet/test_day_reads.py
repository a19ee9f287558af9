"""The fleet's per-day reads on real lake files: a simulated fleet, ingested, its features built by
the real writer (several row groups), scored by the real writer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelcycle.features.store import FEATURE_ROW_GROUP_ROWS, build_day_features, readings_spec
from modelcycle.fleet.detail import device_detail
from modelcycle.fleet.sources import DeviceNotFoundError, FleetSources
from modelcycle.lake import layout
from modelcycle.lake.ingest import ingest_day
from modelcycle.monitoring.scoring import SCORES_SCHEMA, write_scores
from modelcycle.settings import Settings
from modelcycle.simulate import FleetSpec, simulate_fleet
from modelcycle.storage import ObjectStore, open_store
from modelcycle.store import open_store as open_db
from modelcycle.store.database import create_store_engine, upgrade

DAY = date(2026, 1, 1)
DETECTOR, CLASSIFIER = "sensor-anomaly-detector", "sensor-fault-classifier"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet-reads")
    simulate_fleet(FleetSpec(devices=150, sensors=4, days=1, start=DAY, seed=5, customers=3),
                   root / "raw")  # fmt: skip
    lake = open_store(str(root / "lake"))
    ingest_day(DAY, raw=open_store(str(root / "raw")), lake=lake)
    features = build_day_features(lake, DAY, readings_spec(lake, DAY))
    for model in (DETECTOR, CLASSIFIER):
        n = features.num_rows
        scores = np.linspace(-1, 1, n).astype(np.float32)
        write_scores(lake, DAY, pa.table({
            "device_id": features.column("device_id"),
            "window_start": features.column("window_start").cast(pa.timestamp("us")),
            "model": pa.array([model] * n), "version": pa.array(["1"] * n),
            "score": scores, "flagged": scores >= 0,
        }, schema=SCORES_SCHEMA))  # fmt: skip
    return root


def _sources(home: Path) -> FleetSources:
    url = f"sqlite:///{home / 'store.db'}"
    settings = Settings(home=home, database_url=url)
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    return FleetSources(lake=ObjectStore(str(home / "lake")), raw=ObjectStore(str(home / "raw")),
                        store=open_db(settings), anomaly_model=DETECTOR,
                        fault_model=CLASSIFIER)  # fmt: skip


def _owners(home: Path) -> dict[str, str]:
    register = pl.read_csv(home / "raw" / layout.FLEET_FILE)
    return dict(zip(register["device_id"], register["customer_id"], strict=True))


def test_a_device_page_reads_its_own_rows_and_the_contributors_of_every_window(
    home: Path,
) -> None:
    path = home / "lake" / layout.features_partition(DAY)
    assert pq.read_metadata(path).num_row_groups == -(-150 * 24 // FEATURE_ROW_GROUP_ROWS)
    full = pl.read_parquet(path)
    device = "device-0100"
    sources = _sources(home)
    detail = device_detail(sources, _owners(home)[device], device, days=1)
    mine = full.filter(pl.col("device_id") == device).sort("window_start")
    for sensor, points in detail.series.items():
        assert [p["t"] for p in points] == mine["window_start"].to_list()
        assert [p["mean"] for p in points] == pytest.approx(mine[f"{sensor}_mean"].to_list())
    # the contributors equal a brute force over every window against the fleet's median and MAD
    expected = {}
    for sensor in detail.sensors:
        column = full[f"{sensor}_std"].to_numpy()
        center = np.median(column)
        scale = max(np.median(np.abs(column - center)) * 1.4826, 1e-6)
        expected[sensor] = float(np.max(np.abs(mine[f"{sensor}_std"].to_numpy() - center) / scale))
    top = sorted(expected.items(), key=lambda item: -item[1])[: len(detail.contributors)]
    assert [(c["sensor"], c["z"]) for c in detail.contributors] == [
        (s, round(z, 2)) for s, z in top
    ]
    assert len(detail.scores) == 24
    sources.store.close()


def test_a_customer_never_reads_another_customers_device(home: Path) -> None:
    owners = _owners(home)
    device = "device-0007"
    other = next(c for c in sorted(set(owners.values())) if c != owners[device])
    sources = _sources(home)
    with pytest.raises(DeviceNotFoundError):
        device_detail(sources, other, device, days=1)
    sources.store.close()


def test_a_replaced_partition_is_read_again(home: Path) -> None:
    sources = _sources(home)
    first = sources.reads.features(sources.lake, DAY)
    assert sources.reads.features(sources.lake, DAY) is first  # kept
    build_day_features(sources.lake, DAY, readings_spec(sources.lake, DAY))
    assert sources.reads.features(sources.lake, DAY) is not first
    sources.store.close()
