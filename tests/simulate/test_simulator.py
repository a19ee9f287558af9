"""The simulator's files: deterministic, laid out as promised, and as messy as field logs."""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import typer
from typer.testing import CliRunner

from modelcycle.cli.simulate import simulate
from modelcycle.errors import InvalidInputError
from modelcycle.simulate import FleetSpec, build_fleet_plan, device_id, sensor_names, simulate_fleet
from modelcycle.simulate.logs import ERROR_CODE

SMALL = FleetSpec(devices=20, sensors=10, days=2, start=date(2026, 1, 1), seed=11)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    simulate_fleet(SMALL, tmp_path / "a")
    simulate_fleet(SMALL, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    simulate_fleet(SMALL, tmp_path / "a")
    simulate_fleet(FleetSpec(**{**SMALL.__dict__, "seed": 12}), tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert a["2026-01-01/device-0000.csv"] != b["2026-01-01/device-0000.csv"]


def test_layout_header_and_one_row_a_minute(tmp_path: Path) -> None:
    progress: list[int] = []
    summary = simulate_fleet(SMALL, tmp_path, on_progress=progress.append)
    assert summary.files_written == sum(progress) == 40
    assert summary.days == [date(2026, 1, 1), date(2026, 1, 2)]
    assert summary.bytes_written == sum(len(data) for data in _files(tmp_path).values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-01-01",
        "2026-01-02",
        "devices.csv",
        "maintenance.csv",
        "truth",
    ]
    assert sorted(p.name for p in (tmp_path / "2026-01-02").iterdir()) == [
        f"{device_id(i)}.csv" for i in range(20)
    ]
    log = tmp_path / "2026-01-02" / "device-0003.csv"
    data = log.read_bytes()
    assert b"\r" not in data
    header = data.decode().splitlines()[0]
    assert header == ",".join(["timestamp", "device_id", *sensor_names(10)])
    frame = pl.read_csv(log, infer_schema_length=0)  # all strings: the log as written
    assert 1380 <= frame.height <= 1450  # a few minutes missing, a few lines duplicated
    assert frame["device_id"].value_counts(sort=True)["device_id"][0] == "device-0003"
    assert frame["timestamp"][0].startswith("2026-01-02 00:0")
    values = frame["s000"].drop_nulls()
    assert values.str.contains(r"^-?\d+\.\d{3}$").sum() > 0.99 * len(values)  # 3 decimals


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    simulate_fleet(SMALL, tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_devices_belong_to_customers_of_different_sizes(tmp_path: Path) -> None:
    simulate_fleet(FleetSpec(devices=300, sensors=8, days=1, seed=1), tmp_path)
    with (tmp_path / "devices.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["device_id"] for r in rows] == [device_id(i) for i in range(300)]
    sizes = Counter(r["customer_id"] for r in rows)
    assert len(sizes) == 20
    assert max(sizes.values()) >= 5 * min(sizes.values())
    assert all(r["site"].startswith(r["customer_id"] + "-site-") for r in rows)
    assert all(1 <= int(r["site"].rsplit("-", 1)[1]) <= 5 for r in rows)
    assert {r["device_type"] for r in rows} == {"pump", "compressor", "turbine", "fan"}


def test_small_fleet_has_no_customer_without_devices() -> None:
    plan = build_fleet_plan(FleetSpec(devices=7, sensors=8, customers=20))
    assert len({d.customer_id for d in plan.devices}) == 7


def test_ledger_lists_only_faults_confirmed_within_the_period(tmp_path: Path) -> None:
    spec = FleetSpec(devices=60, sensors=10, days=6, seed=4)
    summary = simulate_fleet(spec, tmp_path)
    ledger = pl.read_csv(tmp_path / "maintenance.csv", try_parse_dates=True)
    plan = build_fleet_plan(spec)
    assert summary.faults == ledger.height >= 10
    assert (ledger["confirmed_at"] > ledger["fault_start"]).all()
    assert (ledger["confirmed_at"] < datetime(2026, 1, 7)).all()
    late = [f for f in plan.faults if f.confirmed_at >= datetime(2026, 1, 7)]
    assert late, "some faults are still undetected when the period ends"
    assert len(plan.faults) == ledger.height + len(late)
    assert set(ledger["fault_type"]) == {"drift", "vibration", "stuck"}


def test_truth_lists_every_injected_anomaly_and_fault_with_its_span(tmp_path: Path) -> None:
    """The ledger holds confirmed faults only; the truth also the undetected ones and anomalies."""
    spec = FleetSpec(devices=60, sensors=10, days=6, seed=4)
    simulate_fleet(spec, tmp_path)
    truth = pl.read_csv(tmp_path / "truth" / "injected.csv", try_parse_dates=True)
    ledger = pl.read_csv(tmp_path / "maintenance.csv", try_parse_dates=True)
    plan = build_fleet_plan(spec)
    assert truth.height == len(plan.faults) + len(plan.anomalies)
    assert set(truth["kind"]) == {"drift", "vibration", "stuck", "spike", "hot"}
    faults = truth.filter(pl.col("kind").is_in(["drift", "vibration", "stuck"]))
    confirmed = faults.join(
        ledger, left_on=["device_id", "start"], right_on=["device_id", "fault_start"]
    )
    assert confirmed.height == ledger.height < faults.height  # undetected faults are truth too
    assert (confirmed["end"] == confirmed["confirmed_at"]).all()
    assert (truth["end"] > truth["start"]).all() and (truth["end"] <= datetime(2026, 1, 7)).all()
    spikes = truth.filter(pl.col("kind") == "spike")
    assert ((spikes["end"] - spikes["start"]).dt.total_minutes().is_between(5, 30)).all()


def test_a_sixty_device_ten_day_fleet_has_dozens_of_fault_episodes() -> None:
    spec = FleetSpec(devices=60, sensors=20, days=10)
    plan = build_fleet_plan(spec)
    assert len(plan.ledger()) >= 24
    faulty_hours = sum(
        (min(f.confirmed_at, spec.period_end) - f.start).total_seconds() / 3600 for f in plan.faults
    )
    assert 0.03 <= faulty_hours / (spec.devices * spec.days * 24) <= 0.07


def _log_lines(texts: dict[Path, bytes]) -> list[tuple[Path, str]]:
    return [(p, line) for p, data in texts.items() for line in data.decode().splitlines()[1:]]


def test_every_imperfection_of_field_logs_appears(tmp_path: Path) -> None:
    simulate_fleet(FleetSpec(devices=250, sensors=8, days=2, seed=9), tmp_path)
    everything = {p: p.read_bytes() for p in tmp_path.glob("2026-*/*.csv")}
    texts = {p: d for p, d in everything.items() if d.startswith(b"timestamp,device_id,s000")}
    assert len(texts) < len(everything), "a run of 500 device-days has an unreadable file"
    lines = _log_lines(texts)
    fields = 10
    assert any(",," in line for _, line in lines), "empty field"
    assert any(line.count(",") < fields - 1 for _, line in lines), "truncated line"
    assert any(ERROR_CODE in line for _, line in lines), "error code"
    assert any(
        line[:10] == f"{date.fromisoformat(p.parent.name) + timedelta(days=1)}" for p, line in lines
    ), "clock skew into the next day"
    assert any(a == b for (_, a), (_, b) in itertools.pairwise(lines)), "duplicated line"
    numeric = set("0123456789.-,: ") | set("device")
    assert any(set(line) - numeric for _, line in lines), "garbled value"
    rows = sorted(len(data.splitlines()) - 1 for data in texts.values())
    assert rows[0] < 1440 - 5, "a gap of missing minutes"


def test_cli_writes_the_fleet_and_reports_where(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(simulate)
    out = tmp_path / "raw"
    args = ["--out", str(out), "--devices", "3", "--sensors", "8", "--start", "2026-03-01"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "maintenance.csv" in result.output
    assert len(list((out / "2026-03-01").glob("device-*.csv"))) == 3


def test_cli_refuses_too_few_sensors(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(simulate)
    result = CliRunner().invoke(app, ["--out", str(tmp_path), "--sensors", "4"])
    assert result.exit_code == 2


def test_cli_names_the_option_of_a_bad_date(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(simulate)
    result = CliRunner().invoke(app, ["--out", str(tmp_path), "--drift-start", "2026-02-30"])
    assert isinstance(result.exception, InvalidInputError)
    assert "--drift-start" in str(result.exception)
