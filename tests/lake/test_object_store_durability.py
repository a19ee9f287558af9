"""A local object store's write survives a crash: the data is on disk before the rename publishes
it, and the rename is on disk after. A power cut cannot be staged in a test, so this watches the
real `os.fsync` calls (a recording wrapper that still syncs) and what they were made on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelcycle.storage import open_store


def test_a_local_put_syncs_the_file_before_its_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path / "lake"))
    target = tmp_path / "lake" / "predictions" / "date=2026-01-01" / "part-1.parquet"
    synced: list[tuple[Path, bool]] = []  # what was synced, and whether the target existed yet
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append((Path(os.readlink(f"/proc/self/fd/{descriptor}")), target.exists()))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store.write_bytes("predictions/date=2026-01-01/part-1.parquet", b"rows")

    assert target.read_bytes() == b"rows"
    assert len(synced) == 2, synced
    (copy, published_before), (folder, published_after) = synced
    assert copy.parent == target.parent and copy.name.startswith(f".{target.name}.")
    assert not published_before
    assert folder == target.parent and published_after


def test_a_moved_file_is_renamed_into_place_and_still_synced_before_it_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path / "lake"))
    source = tmp_path / "scratch" / "readings.parquet"
    source.parent.mkdir()
    source.write_bytes(b"day")
    inode = source.stat().st_ino
    target = tmp_path / "lake" / "readings" / "date=2026-01-01" / "part-0.parquet"
    synced: list[bool] = []  # whether the target existed at each sync
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(target.exists())
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store.put_file(source, "readings/date=2026-01-01/part-0.parquet", move=True)

    assert target.read_bytes() == b"day"
    assert target.stat().st_ino == inode, "renamed, not copied"
    assert not source.exists()
    assert synced == [False, True]
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second filesystem (tmpfs)")
def test_a_file_moved_from_another_filesystem_is_copied(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "lake"))
    source = Path("/dev/shm") / f"modelcycle-test-{os.getpid()}.parquet"
    source.write_bytes(b"day")
    try:
        if source.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the same filesystem here")
        store.put_file(source, "readings/date=2026-01-01/part-0.parquet", move=True)
        published = tmp_path / "lake" / "readings" / "date=2026-01-01" / "part-0.parquet"
        assert published.read_bytes() == b"day"
    finally:
        source.unlink(missing_ok=True)
