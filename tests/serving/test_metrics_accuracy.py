"""The accuracy gauge on /metrics: per model, absent when unknown, never breaking a scrape."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from modelcycle.errors import DataNotFoundError, StorageError
from modelcycle.registry.loading import VersionRecord
from modelcycle.serving.app import build_services
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.metrics import AccuracySource, ApiMetrics
from modelcycle.serving.services import ServedAccuracy
from modelcycle.settings import Settings
from modelcycle.store import Store


class NoRegistry:
    """A version source with nothing registered: these tests look at metrics, not models."""

    def resolve(self, name: str, alias: str) -> VersionRecord:
        raise DataNotFoundError(f"no version of {name} has the alias {alias!r}")

    def fetch(self, record: VersionRecord) -> bytes:
        raise DataNotFoundError(f"no artifact for {record.name}")


def api_metrics(
    tmp_path: Path, accuracy_source: AccuracySource | None, names: tuple[str, ...] = ("m",)
) -> ApiMetrics:
    """The API's metrics for `names`, with one answered request recorded."""
    manager = ModelManager(
        names=names, alias="champion", source=NoRegistry(), cache=ArtifactCache(tmp_path)
    )
    metrics = ApiMetrics(manager, accuracy_source=accuracy_source)
    metrics.observe("/v1/models/{name}/predict", names[0], 200, 0.001)
    return metrics


def exposition(metrics: ApiMetrics) -> str:
    """What Prometheus reads from /metrics."""
    return generate_latest(metrics.registry).decode()


def test_accuracy_gauge_shows_each_models_7_day_average(tmp_path: Path) -> None:
    text = exposition(api_metrics(tmp_path, lambda: {"m": 0.93}))
    assert 'modelcycle_model_accuracy_7d{model="m"} 0.93' in text


def test_a_model_without_accuracy_has_no_sample(tmp_path: Path) -> None:
    source = {"m": 0.93, "nan": math.nan}
    text = exposition(api_metrics(tmp_path, lambda: source, names=("m", "none", "nan")))
    samples = [line for line in text.splitlines() if line.startswith("modelcycle_model_accuracy")]
    assert samples == ['modelcycle_model_accuracy_7d{model="m"} 0.93']


def test_a_failing_accuracy_source_leaves_out_only_the_gauge(tmp_path: Path) -> None:
    def broken() -> Mapping[str, float]:
        raise RuntimeError("store gone")

    metrics = api_metrics(tmp_path, broken)
    with capture_logs() as logs:
        text = exposition(metrics)
    assert "modelcycle_model_accuracy_7d" not in text
    assert 'modelcycle_model_reloads_total{model="m",outcome="loaded"} 0.0' in text
    assert "modelcycle_requests_total{" in text
    assert "# TYPE modelcycle_model_age_seconds gauge" in text
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert "store gone" in logs[0]["error"]


def test_without_an_accuracy_source_there_is_no_gauge(tmp_path: Path) -> None:
    assert "modelcycle_model_accuracy_7d" not in exposition(api_metrics(tmp_path, None))


def test_api_metrics_show_the_accuracy_read_by_the_last_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is read by the poll (`refresh`), not by a scrape; a failed poll keeps values."""
    settings = Settings(home=tmp_path, database_url=None, classifier_model_name="m")
    services = build_services(settings, source=NoRegistry())
    reads: list[tuple[str, ...]] = []

    def averages(store: Store, models: tuple[str, ...], *, window_days: int) -> dict[str, float]:
        reads.append(tuple(models))
        assert window_days == 7
        return {"m": 0.875}

    monkeypatch.setattr("modelcycle.store.evaluations.accuracy_averages", averages)
    try:
        assert "modelcycle_model_accuracy_7d{" not in exposition(services.metrics)
        services.accuracy.refresh()
        for _ in range(3):
            assert 'modelcycle_model_accuracy_7d{model="m"} 0.875' in exposition(services.metrics)
        assert reads == [services.manager.names]

        def store_down(
            store: Store, models: tuple[str, ...], *, window_days: int
        ) -> dict[str, float]:
            raise StorageError("cannot reach the monitoring store")

        monkeypatch.setattr("modelcycle.store.evaluations.accuracy_averages", store_down)
        with capture_logs() as logs:
            services.accuracy.refresh()
            services.accuracy.refresh()
        assert [entry["error"] for entry in logs] == ["cannot reach the monitoring store"]
        assert 'modelcycle_model_accuracy_7d{model="m"} 0.875' in exposition(services.metrics)
    finally:
        services.accuracy.close()


def test_an_out_of_date_store_is_reported_once_and_the_api_serves_on(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE legacy (id INTEGER)")
        connection.commit()
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{database}")
    accuracy = ServedAccuracy(settings, ("m",))
    with capture_logs() as logs:
        accuracy.refresh()
        accuracy.refresh()
    accuracy.close()
    assert accuracy.current() == {}
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert "modelcycle db upgrade" in logs[0]["error"]
