"""`train --raw`: the labels come from the same raw area `ingest --raw` read the logs from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import invoke_cli


@pytest.mark.slow
def test_train_reads_the_ledger_from_the_raw_area_ingest_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    env = {"MODELCYCLE_HOME": str(tmp_path / "home")}
    simulated = invoke_cli(
        "simulate", "--out", str(elsewhere), "--devices", "4", "--sensors", "8", "--days", "3",
        env=env,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        ingested = invoke_cli("ingest", "--date", day, "--raw", str(elsewhere), env=env)
        assert ingested.returncode == 0, ingested.stderr

    without = invoke_cli("train", "--date", "2026-01-03", "--window-days", "3", env=env)
    assert without.returncode == 3
    assert "no maintenance ledger" in without.stderr

    with_raw = invoke_cli(
        "train", "--date", "2026-01-03", "--window-days", "3", "--raw", str(elsewhere), env=env
    )
    assert with_raw.returncode == 0, with_raw.stderr
    # the labels were read: the split names how many windows were faulty
    assert "faulty), testing on" in with_raw.stderr, with_raw.stderr
