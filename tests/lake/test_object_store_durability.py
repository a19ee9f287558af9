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
