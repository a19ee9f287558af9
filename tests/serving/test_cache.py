"""The serving cache: a broken entry counts as missing (never stops a start), old versions go."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelcycle.registry.loading import VersionRecord
from modelcycle.serving.cache import ArtifactCache
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.metrics import ApiMetrics
from tests.serving.test_metrics_accuracy import NoRegistry, exposition


def record(version: str, alias: str = "champion") -> VersionRecord:
    return VersionRecord(
        name="m",
        version=version,
        alias=alias,
        run_id=f"run-{version}",
        sha256="0" * 64,
        trained_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def truncate(path: Path) -> None:
    path.write_text(path.read_text()[:25])


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def wrong_types(path: Path) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": 7}))


BREAKAGES: dict[str, Callable[[Path], object]] = {
    "truncated": truncate,
    "not an object": lambda path: path.write_text("[1, 2]"),
    "a field missing": lambda path: path.write_text('{"name": "m"}'),
    "a bad date": lambda path: path.write_text(path.read_text().replace("2026-01-01", "Monday")),
    "wrong types": wrong_types,
    "a folder": replace_with_folder,
    "not text": lambda path: path.write_bytes(b"\xff\xfe\x00garbage"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_cache_record_counts_as_missing_and_is_reported(
    tmp_path: Path, breakage: str
) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    cache.save(record("1"), b"onnx bytes")
    BREAKAGES[breakage](tmp_path / "cache" / "m" / "champion.json")
    manager = ModelManager(names=("m",), alias="champion", source=NoRegistry(), cache=cache)

    manager.start_from_cache()  # must not raise: the API starts and asks the registry

    assert manager.models == {}
    status = manager.status["m"]
    assert "champion.json" in str(status.cache_error)
    assert status.cache_errors["read"] == 1
    text = exposition(ApiMetrics(manager))
    assert 'modelcycle_serving_cache_errors_total{model="m",operation="read"} 1.0' in text


def test_an_unreadable_cached_artifact_counts_as_missing(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    cache.save(record("1"), b"onnx bytes")
    replace_with_folder(tmp_path / "cache" / "m" / "1.onnx")
    manager = ModelManager(names=("m",), alias="champion", source=NoRegistry(), cache=cache)
    manager.start_from_cache()
    assert "IsADirectoryError" in str(manager.status["m"].cache_error)


def test_only_the_current_and_previous_versions_stay_cached(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    cache.save(record("3", alias="challenger"), b"challenger")
    for version in ("1", "2", "3", "4", "5"):
        cache.save(record(version), version.encode())
    assert cache.prune("m", keep={"5", "4"}) == ["1", "2"]
    folder = tmp_path / "cache" / "m"
    assert sorted(path.name for path in folder.iterdir()) == [
        "3.onnx",  # the challenger record still points at it
        "4.onnx",
        "5.onnx",
        "challenger.json",
        "champion.json",
    ]
    assert cache.load("m", "champion") == (record("5"), b"5")
