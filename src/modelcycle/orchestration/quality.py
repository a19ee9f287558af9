"""Data-quality rules of a day's lake partition, pure so the asset check and tests share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelcycle.lake.report import IngestReport
from modelcycle.lake.schema import SENSOR_PATTERN
from modelcycle.storage import duck

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class QualityVerdict:
    passed: bool
    reasons: list[str]
    metadata: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return (
            "; ".join(self.reasons) if self.reasons else "row count, quarantine and nulls in bounds"
        )


def null_shares(partition: Path) -> dict[str, float]:
    """Share of missing values per sensor column of a readings partition."""
    con = duck.connect()
    try:
        source = "read_parquet('" + str(partition).replace("'", "''") + "')"
        columns = con.sql(f"SELECT * FROM {source} LIMIT 0").columns
        sensors = [name for name in columns if SENSOR_PATTERN.match(name)]
        if not sensors:
            return {}
        parts = ", ".join(f'1 - count("{s}") / count(*)' for s in sensors)
        row = con.execute(f"SELECT {parts} FROM {source}").fetchone()
    finally:
        con.close()
    return {s: float(v or 0.0) for s, v in zip(sensors, row or (), strict=True)}


def judge_partition(
    report: IngestReport,
    nulls: dict[str, float],
    *,
    fleet_size: int,
    min_row_share: float,
    max_quarantine_share: float,
    max_null_share: float,
) -> QualityVerdict:
    expected = fleet_size * MINUTES_PER_DAY
    row_share = report.rows_written / expected if expected else 0.0
    worst_sensor, worst_null = max(nulls.items(), key=lambda kv: kv[1], default=("-", 0.0))
    reasons = []
    if row_share < min_row_share:
        reasons.append(
            f"{report.rows_written:,} rows is {row_share:.0%} of the {expected:,} expected "
            f"for {fleet_size} devices (minimum {min_row_share:.0%})"
        )
    if report.quarantine_share > max_quarantine_share:
        reasons.append(
            f"{report.quarantine_share:.1%} of rows quarantined "
            f"(maximum {max_quarantine_share:.0%})"
        )
    if worst_null > max_null_share:
        reasons.append(f"{worst_sensor} is {worst_null:.0%} empty (maximum {max_null_share:.0%})")
    return QualityVerdict(
        passed=not reasons,
        reasons=reasons,
        metadata={
            "rows_written": report.rows_written,
            "rows_expected": expected,
            "row_share": round(row_share, 4),
            "quarantine_share": round(report.quarantine_share, 4),
            "worst_null_sensor": worst_sensor,
            "worst_null_share": round(worst_null, 4),
        },
    )
