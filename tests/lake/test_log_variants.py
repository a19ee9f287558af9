"""Real devices' logs are not the simulator's: every common text variant lands intact.

Each test writes the exact bytes of a variant to disk next to a plain log and checks that the
variant's readings are the plain ones, that nothing is quarantined, and that the report accounts
for every physical line of the file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from modelcycle.lake import layout
from modelcycle.lake.ingest import IngestOptions, ingest_day
from modelcycle.lake.report import IngestReport
from modelcycle.storage import open_store
from tests.lake.rawlogs import DAY, HEADER, good_line, log_bytes, write_log, write_raw
from tests.support.cli import run_cli

DEVICE = "device-0000"
ROWS = [good_line(DEVICE, minute) for minute in range(4)]
QUOTED_HEADER = ",".join(f'"{name}"' for name in HEADER.split(","))


def _quoted(line: str) -> str:
    return ",".join(f'"{field}"' for field in line.split(","))


# name: (file name, bytes, physical lines, header lines, blank lines)
VARIANTS: dict[str, tuple[str, bytes, int, int, int]] = {
    "CRLF line endings": ("device-0000.csv", log_bytes(ROWS, newline="\r\n"), 5, 1, 0),
    "CR line endings": ("device-0000.csv", log_bytes(ROWS, newline="\r"), 5, 1, 0),
    "mixed line endings": (
        "device-0000.csv",
        f"{HEADER}\n{ROWS[0]}\r\n{ROWS[1]}\r{ROWS[2]}\n{ROWS[3]}".encode(),
        5,
        1,
        0,
    ),
    "one line ending in a bare CR": (
        "device-0000.csv",
        f"{HEADER}\n{ROWS[0]}\n{ROWS[1]}\r{ROWS[2]}\n{ROWS[3]}\n".encode(),
        5,
        1,
        0,
    ),
    "UTF-8 BOM": ("device-0000.csv", log_bytes(ROWS, bom=True), 5, 1, 0),
    "no final newline": ("device-0000.csv", log_bytes(ROWS, final_newline=False), 5, 1, 0),
    "blank lines": (
        "device-0000.csv",
        log_bytes([ROWS[0], "", ROWS[1], "   ", "", ROWS[2], "\t", ROWS[3], ""]),
        10,
        1,
        5,
    ),
    "trailing blank line": ("device-0000.csv", log_bytes([*ROWS, ""]), 6, 1, 1),
    "trailing whitespace": ("device-0000.csv", log_bytes([f"{row}  \t" for row in ROWS]), 5, 1, 0),
    "spaces after commas": (
        "device-0000.csv",
        log_bytes([row.replace(",", ", ") for row in ROWS], header=HEADER.replace(",", ", ")),
        5,
        1,
        0,
    ),
    "quoted fields": (
        "device-0000.csv",
        log_bytes([_quoted(row) for row in ROWS], header=QUOTED_HEADER),
        5,
        1,
        0,
    ),
    "header repeated after a reboot": (
        "device-0000.csv",
        log_bytes([ROWS[0], ROWS[1], HEADER, ROWS[2], ROWS[3]]),
        6,
        2,
        0,
    ),
    "gzip": ("device-0000.csv.gz", log_bytes(ROWS), 5, 1, 0),
    "gzip, BOM, CRLF and quotes": (
        "device-0000.csv.gz",
        log_bytes([_quoted(row) for row in ROWS], newline="\r\n", bom=True, header=QUOTED_HEADER),
        5,
        1,
        0,
    ),
}


def _ingest(tmp_path: Path) -> tuple[IngestReport, Path]:
    lake_root = tmp_path / "lake"
    report = ingest_day(DAY, raw=open_store(str(tmp_path / "raw")), lake=open_store(str(lake_root)))
    return report, lake_root


def _readings_of(lake_root: Path, device: str) -> list[tuple[datetime, float, float, float]]:
    table = pq.read_table(lake_root / layout.readings_partition(DAY))
    table = table.filter(pc.equal(table.column("device_id"), device))
    columns = [table.column(name).to_pylist() for name in ("timestamp", "s000", "s001", "s002")]
    return list(zip(*columns, strict=True))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_lands_intact_and_every_line_is_accounted_for(tmp_path: Path, variant: str) -> None:
    name, data, lines, header_lines, blank_lines = VARIANTS[variant]
    write_raw(tmp_path / "raw", name, data, gzipped=name.endswith(".gz"))
    write_log(tmp_path / "raw", "device-0001", [good_line("device-0001", m) for m in range(4)])
    report, lake_root = _ingest(tmp_path)

    expected = [(datetime(2026, 3, 1, 0, minute), 10.0, 11.0, 12.0) for minute in range(4)]
    assert _readings_of(lake_root, DEVICE) == expected
    assert report.files_quarantined == 0
    assert report.rows_quarantined == 0, pq.read_table(
        lake_root / layout.quarantine_rows(DAY)
    ).to_pylist()
    assert report.rows_read == report.rows_written == 8
    assert report.lines_read == lines + 5  # device-0001: header and four rows
    assert report.header_lines == header_lines + 1
    assert report.blank_lines == blank_lines
    assert report.balanced


def _quarantined(lake_root: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = pq.read_table(
        lake_root / layout.quarantine_rows(DAY)
    ).to_pylist()
    return rows


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["CRLF", "CR"])
def test_bad_line_in_a_crlf_or_cr_log_keeps_its_line_number_and_text(
    tmp_path: Path, newline: str
) -> None:
    truncated = ROWS[2][:25]
    write_raw(tmp_path / "raw", "device-0000.csv", log_bytes([*ROWS, truncated], newline=newline))
    report, lake_root = _ingest(tmp_path)
    (row,) = _quarantined(lake_root)
    assert (row["line"], row["reason"], row["raw_line"]) == (6, "truncated line", truncated)
    assert report.rows_written == 4
    assert report.file_variants == {
        "CRLF line endings" if newline == "\r\n" else "CR line endings": 1
    }


def test_bad_line_in_a_quoted_log_is_quarantined_as_written(tmp_path: Path) -> None:
    bad = _quoted(ROWS[3].replace("11.000", "eleven"))
    lines = [_quoted(row) for row in ROWS[:3]] + [bad]
    write_raw(tmp_path / "raw", "device-0000.csv", log_bytes(lines, header=QUOTED_HEADER))
    report, lake_root = _ingest(tmp_path)
    (row,) = _quarantined(lake_root)
    assert (row["line"], row["reason"], row["raw_line"]) == (5, "unparseable value", bad)
    assert report.rows_written == 3


def test_plain_and_gzipped_log_of_one_device_stay_in_one_batch(tmp_path: Path) -> None:
    """The second copy of each reading is a duplicate, and the partition stays sorted."""
    raw = tmp_path / "raw"
    write_raw(raw, "device-0000.csv", log_bytes(ROWS[:3]))
    write_raw(raw, "device-0000.csv.gz", log_bytes(ROWS[1:]), gzipped=True)
    write_log(raw, "device-0001", [good_line("device-0001", m) for m in range(2)])
    lake_root = tmp_path / "lake"
    report = ingest_day(
        DAY,
        raw=open_store(str(raw)),
        lake=open_store(str(lake_root)),
        options=IngestOptions(batch_files=1),
    )
    table = pq.read_table(lake_root / layout.readings_partition(DAY))
    keys = list(
        zip(
            table.column("device_id").to_pylist(),
            table.column("timestamp").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
    assert len(keys) == 4 + 2
    assert [row["reason"] for row in _quarantined(lake_root)] == ["duplicate reading"] * 2
    assert report.balanced


def test_ingest_command_shows_the_line_count_and_the_variants_read(tmp_path: Path) -> None:
    write_raw(tmp_path / "raw", "device-0000.csv", log_bytes([*ROWS, ""], newline="\r\n"))
    result = run_cli(
        "ingest",
        "--date",
        DAY.isoformat(),
        "--raw",
        str(tmp_path / "raw"),
        env={"MODELCYCLE_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "CRLF line endings" in result.stdout
    assert "6 in the files = 1 header + 1 blank + 4 rows" in result.stdout
