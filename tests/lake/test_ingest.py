"""Ingest: every row lands in the partition or the quarantine, with a reason, atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelcycle.errors import DataNotFoundError, ModelcycleError, StorageError
from modelcycle.lake import layout
from modelcycle.lake.ingest import IngestOptions, ingest_day, read_ingest_report
from modelcycle.lake.ledger import FileAccount, balance_lines
from modelcycle.lake.report import IngestReport
from modelcycle.lake.screening import ReadableLog
from modelcycle.storage import open_store
from tests.lake.rawlogs import DAY, HEADER, good_line, write_healthy_day, write_log, write_raw
from tests.support.servers import free_port


def _ingest(tmp_path: Path, batch_files: int = 100) -> tuple[IngestReport, Path]:
    lake_root = tmp_path / "lake"
    report = ingest_day(
        DAY,
        raw=open_store(str(tmp_path / "raw")),
        lake=open_store(str(lake_root)),
        options=IngestOptions(batch_files=batch_files),
    )
    return report, lake_root


def _quarantined_rows(lake_root: Path) -> list[dict[str, object]]:
    table = pq.read_table(lake_root / layout.quarantine_rows(DAY))
    rows: list[dict[str, object]] = table.to_pylist()
    return rows


def test_ingest_writes_typed_partition_sorted_by_device_and_time(tmp_path: Path) -> None:
    device = "device-0001"
    write_log(tmp_path / "raw", device, [good_line(device, m) for m in (2, 0, 1)])
    write_healthy_day(tmp_path / "raw", devices=1)  # device-0000, written after device-0001
    _, lake_root = _ingest(tmp_path)
    table = pq.read_table(lake_root / layout.readings_partition(DAY))
    assert table.schema.field("s000").type == "float"
    assert str(table.schema.field("timestamp").type) == "timestamp[us]"
    devices, stamps = table.column("device_id").to_pylist(), table.column("timestamp").to_pylist()
    keys = list(zip(devices, stamps, strict=True))
    assert keys == sorted(keys)
    assert table.num_rows == 63


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (good_line("device-0000", 5)[:30], "truncated line"),
        (good_line("device-0000", 5) + ",99.000", "too many fields"),
        (good_line("device-0000", 5).replace("10.000", "1#0.0!"), "unparseable value"),
        ("2026-03-01 25:99:00,device-0000,1.0,2.0,3.0", "unparseable timestamp"),
        (",device-0000,1.0,2.0,3.0", "missing timestamp"),
        (good_line("device-0007", 5), "device_id does not match file"),
        (
            good_line("device-0000", 5).replace("2026-03-01", "2026-03-02"),
            "timestamp outside the day",
        ),
        (good_line("device-0000", 5).replace("11.000", "-9999.000"), "value out of range"),
        (good_line("device-0000", 5).replace("12.000", "nan"), "value out of range"),
        (good_line("device-0000", 5).replace("12.000", "inf"), "value out of range"),
        (good_line("device-0000", 3), "duplicate reading"),
    ],
)
def test_ingest_quarantines_bad_line_with_its_reason(
    tmp_path: Path, bad_line: str, reason: str
) -> None:
    device = "device-0000"
    lines = [good_line(device, m) for m in range(5)]
    write_log(tmp_path / "raw", device, [*lines, bad_line])
    report, lake_root = _ingest(tmp_path)
    quarantined = _quarantined_rows(lake_root)
    assert [row["reason"] for row in quarantined] == [reason]
    assert quarantined[0]["file"] == "device-0000.csv"
    assert report.rows_written == 5
    assert report.rows_read == 6
    assert report.row_reasons == {reason: 1}


def test_quarantined_parser_line_keeps_its_text_and_line_number(tmp_path: Path) -> None:
    device = "device-0000"
    truncated = good_line(device, 2)[:25]
    write_log(tmp_path / "raw", device, [good_line(device, 0), good_line(device, 1), truncated])
    _, lake_root = _ingest(tmp_path)
    (row,) = _quarantined_rows(lake_root)
    assert row["raw_line"] == truncated
    assert row["line"] == 4  # the header is line 1


def test_empty_field_is_kept_as_missing_value_not_quarantined(tmp_path: Path) -> None:
    device = "device-0000"
    line = good_line(device, 0).replace(",11.000,", ",,")
    write_log(tmp_path / "raw", device, [line])
    report, lake_root = _ingest(tmp_path)
    table = pq.read_table(lake_root / layout.readings_partition(DAY))
    assert table.column("s001").to_pylist() == [None]
    assert report.rows_quarantined == 0


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("device-0009.csv", b"\x00\x01\x02garbage", "unreadable file: binary content"),
        ("device-0009.csv", b"", "empty file"),
        ("device-0009.csv", b"\xff\xfe" + b"x" * 20, "unreadable file: not UTF-8 text"),
        (
            "device-0009.csv",
            b"time,device,a,b\n1,2,3,4\n",
            "header does not match the day's columns",
        ),
        ("notes.txt", b"hello", "file name is not device-NNNN.csv or device-NNNN.csv.gz"),
        ("device-0009.csv.gz", b"\x1f\x8b\x08\x00garbage", "unreadable file: damaged gzip stream"),
        ("device-0009.csv", b" \n\n\t\n", "empty file"),
    ],
)
def test_ingest_quarantines_unusable_file_whole(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    write_healthy_day(tmp_path / "raw", devices=2, minutes=10)
    (tmp_path / "raw" / DAY.isoformat() / name).write_bytes(content)
    report, lake_root = _ingest(tmp_path)
    files = pq.read_table(lake_root / layout.quarantine_files(DAY)).to_pylist()
    assert files == [{"file": name, "reason": reason}]
    assert report.files_seen == 3
    assert report.rows_written == 20


def test_report_balances_read_written_and_quarantined(tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=5, minutes=30)
    device = "device-0005"
    lines = [good_line(device, m) for m in range(10)]
    lines += [lines[0], lines[1][:20], good_line("device-0001", 40)]
    write_log(tmp_path / "raw", device, lines)
    _, lake_root = _ingest(tmp_path, batch_files=2)
    report = read_ingest_report(open_store(str(lake_root)), DAY)
    assert report.balanced
    assert report.rows_read == 5 * 30 + 13
    assert report.rows_written == 5 * 30 + 10
    assert report.rows_quarantined == 3
    saved = json.loads((lake_root / layout.ingest_report(DAY)).read_text())
    assert saved["rows_read"] == saved["rows_written"] + saved["rows_quarantined"]


def test_ingesting_a_day_twice_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=3, minutes=20)
    _, lake_root = _ingest(tmp_path)
    first = pq.read_table(lake_root / layout.readings_partition(DAY))
    _ingest(tmp_path)
    second = pq.read_table(lake_root / layout.readings_partition(DAY))
    assert second.num_rows == first.num_rows == 60
    assert second.equals(first)
    partition_files = sorted(p.name for p in (lake_root / "readings").rglob("*") if p.is_file())
    assert partition_files == ["part-0.parquet"]


def test_day_without_logs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    with pytest.raises(DataNotFoundError, match="no device logs for 2026-03-01"):
        _ingest(tmp_path)


_KILL_AFTER_FIRST_BATCH = """
import os, signal, sys
from datetime import date
from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.storage import open_store
def die(_files):
    os.kill(os.getpid(), signal.SIGKILL)
ingest_day(date(2026, 3, 1), raw=open_store(sys.argv[1]), lake=open_store(sys.argv[2]),
           options=IngestOptions(batch_files=2), on_progress=die)
"""


def test_ingest_killed_mid_write_leaves_old_partition_intact(tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=2, minutes=10)
    _, lake_root = _ingest(tmp_path)
    before = (lake_root / layout.readings_partition(DAY)).read_bytes()
    write_healthy_day(tmp_path / "raw", devices=6, minutes=50)
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST_BATCH, str(tmp_path / "raw"), str(lake_root)],
        check=False,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (lake_root / layout.readings_partition(DAY)).read_bytes() == before
    leftovers = [p for p in lake_root.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_ingest_killed_before_commit_leaves_no_partition(tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=6, minutes=50)
    lake_root = tmp_path / "lake"
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST_BATCH, str(tmp_path / "raw"), str(lake_root)],
        check=False,
        capture_output=True,
        env={**os.environ},
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (lake_root / "readings").exists()


def test_header_only_file_counts_no_rows(tmp_path: Path) -> None:
    write_healthy_day(tmp_path / "raw", devices=1, minutes=5)
    folder = tmp_path / "raw" / DAY.isoformat()
    (folder / "device-0003.csv").write_text(HEADER + "\n")
    report, _ = _ingest(tmp_path)
    assert report.rows_read == 5
    assert report.files_ingested == 2


@pytest.mark.parametrize(
    ("bad_bytes", "lines", "reasons"),
    [
        (
            good_line("device-0000", 9).replace("11.000", "1\x001.000").encode(),
            [7],
            ["unparseable value"],
        ),
        (b"\x00\xff\x13\x07garbage\xfe\xfe", [7], ["unparseable timestamp"]),
        (
            good_line("device-0000", 9).replace("11.000", "11.0\r00").encode(),
            [7, 8],
            ["truncated line", "unparseable timestamp"],
        ),
        (b'"' + good_line("device-0000", 9).encode(), [7], ["unparseable timestamp"]),
        (b"timestamp,device_id,s000,s001", [7], ["header line with other columns"]),
    ],
    ids=["NUL byte", "binary garbage", "bare CR inside a value", "unclosed quote", "other header"],
)
def test_unreadable_line_is_quarantined_alone_and_the_rest_of_the_file_lands(
    tmp_path: Path, bad_bytes: bytes, lines: list[int], reasons: list[str]
) -> None:
    """One bad line never costs the file, the day, or the lines after it."""
    device = "device-0000"
    before = [good_line(device, m).encode() for m in range(5)]
    after = [good_line(device, m).encode() for m in range(5, 8)]
    data = b"\n".join([HEADER.encode(), *before, bad_bytes, *after]) + b"\n"
    write_raw(tmp_path / "raw", "device-0000.csv", data)
    report, lake_root = _ingest(tmp_path)
    quarantined = _quarantined_rows(lake_root)
    assert [row["line"] for row in quarantined] == lines
    assert [row["reason"] for row in quarantined] == reasons
    assert report.files_quarantined == 0
    assert report.rows_written == 8
    assert report.lines_read == 1 + 8 + len(lines)
    assert report.balanced


def test_lines_that_do_not_add_up_stop_the_ingest_naming_the_file(tmp_path: Path) -> None:
    """The ledger: a file whose physical lines are not all accounted for is a loud error."""
    path = write_log(tmp_path, "device-0000", [good_line("device-0000", m) for m in range(4)])
    log = ReadableLog("device-0000.csv", path, path, lines=5, variants=())
    lost_rows = {"device-0000.csv": FileAccount(written=2, quarantined=1)}
    with pytest.raises(ModelcycleError, match=r"device-0000\.csv has 5 lines but 1 header"):
        balance_lines(DAY, [log], lost_rows)
    totals = balance_lines(DAY, [log], {"device-0000.csv": FileAccount(written=3, quarantined=1)})
    assert (totals.lines, totals.header_lines, totals.blank_lines) == (5, 1, 0)


def test_unreachable_lake_fails_before_any_file_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    write_healthy_day(tmp_path / "raw", devices=3, minutes=10)
    lake = open_store("s3://fleet/lake", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    parsed: list[int] = []
    with pytest.raises(StorageError, match="s3://fleet/lake"):
        ingest_day(DAY, raw=open_store(str(tmp_path / "raw")), lake=lake, on_progress=parsed.append)
    assert parsed == []


def test_truncated_first_row_costs_only_its_line(tmp_path: Path) -> None:
    device = "device-0000"
    truncated = good_line(device, 0)[:25]
    write_log(tmp_path / "raw", device, [truncated, good_line(device, 1), good_line(device, 2)])
    report, lake_root = _ingest(tmp_path)
    assert [(r["line"], r["reason"]) for r in _quarantined_rows(lake_root)] == [
        (2, "truncated line")
    ]
    assert report.rows_written == 2
    assert report.balanced


_WRITE_LIMITED = """
import resource, signal, sys
from datetime import date
from modelcycle.errors import StorageError
from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.storage import open_store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
try:
    ingest_day(date(2026, 3, 1), raw=open_store(sys.argv[1]), lake=open_store(sys.argv[2]),
               options=IngestOptions(batch_files=1))
except StorageError as error:
    print(error)
    sys.exit(4)
"""


def test_a_partition_write_that_fails_stops_the_ingest_and_keeps_the_old_partition(
    tmp_path: Path,
) -> None:
    """Batches are written in the background while the next is parsed: a write refused by the
    filesystem (here a real file size limit) still stops the day with one line, not later."""
    write_healthy_day(tmp_path / "raw", devices=2, minutes=10)
    _, lake_root = _ingest(tmp_path)
    before = (lake_root / layout.readings_partition(DAY)).read_bytes()
    write_healthy_day(tmp_path / "raw", devices=8, minutes=600)
    limit = str(len(before) * 4)  # the old partition fits; the new day's partition does not
    refused = subprocess.run(
        [sys.executable, "-c", _WRITE_LIMITED, str(tmp_path / "raw"), str(lake_root), limit],
        check=False,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 4, refused.stderr
    assert refused.stdout.startswith("ingest of 2026-03-01 could not write its partition to ")
    assert "File too large" in refused.stdout
    assert (lake_root / layout.readings_partition(DAY)).read_bytes() == before
    assert [p for p in lake_root.rglob("*") if p.name.startswith(".")] == []
