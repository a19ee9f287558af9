"""Labels from the ledger: only what a technician had confirmed by the cut-off."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.storage import open_store
from modelcycle.training.labels import label_windows, read_ledger


def _windows(*starts: str, device: str = "device-0001") -> pa.Table:
    return pa.table(
        {
            "device_id": [device] * len(starts),
            "window_start": pa.array(
                [datetime.fromisoformat(s) for s in starts], pa.timestamp("us")
            ),
        }
    )


def _ledger(*rows: tuple[str, str, str]) -> pa.Table:
    return pa.table(
        {
            "device_id": [r[0] for r in rows],
            "fault_start": pa.array(
                [datetime.fromisoformat(r[1]) for r in rows], pa.timestamp("us")
            ),
            "confirmed_at": pa.array(
                [datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us")
            ),
            "fault_type": ["stuck"] * len(rows),
        }
    )


def test_windows_overlapping_a_confirmed_fault_are_faulty() -> None:
    ledger = _ledger(("device-0001", "2026-01-01 10:30", "2026-01-01 13:00"))
    windows = _windows(
        "2026-01-01 09:00", "2026-01-01 10:00", "2026-01-01 12:00", "2026-01-01 13:00"
    )
    labels = label_windows(windows, ledger, known_at=datetime(2026, 1, 2)).to_pylist()
    assert labels == [0, 1, 1, 0]


def test_fault_confirmed_after_the_cutoff_is_not_known_yet() -> None:
    ledger = _ledger(("device-0001", "2026-01-01 10:00", "2026-01-02 08:00"))
    windows = _windows("2026-01-01 11:00")
    assert label_windows(windows, ledger, known_at=datetime(2026, 1, 2)).to_pylist() == [0]
    assert label_windows(windows, ledger, known_at=datetime(2026, 1, 3)).to_pylist() == [1]


def test_other_devices_faults_do_not_label_this_device() -> None:
    ledger = _ledger(("device-0002", "2026-01-01 10:00", "2026-01-01 12:00"))
    windows = _windows("2026-01-01 10:00")
    assert label_windows(windows, ledger, known_at=datetime(2026, 1, 2)).to_pylist() == [0]


def test_missing_or_malformed_ledger_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = open_store(str(tmp_path))
    with pytest.raises(DataNotFoundError, match="no maintenance ledger"):
        read_ledger(raw)
    (tmp_path / "maintenance.csv").write_text("device_id,fault_start\nx,notadate\n")
    with pytest.raises(InvalidInputError, match="not a valid ledger"):
        read_ledger(raw)
