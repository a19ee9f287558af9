"""How right the anomaly alerts are: precision and recall per device-day against injected truth.

The unit is the device-day because that is what a customer acts on ("look at pump 12 today"). A
device-day is truly anomalous when any injected anomaly or fault signature (`truth/injected.csv`)
overlaps it. It is *flagged by the detector* when at least `min_windows` of its hourly windows
score at or above the version's decision threshold, and *fired by the rule* when the
`device_anomaly` rule's definition (`anomaly_runs.py`) holds on that day's scores. Only days the
models never trained on should be measured; the caller chooses them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from modelcycle.errors import DataNotFoundError, InvalidInputError
from modelcycle.features.windows import WINDOW_START
from modelcycle.lake import layout
from modelcycle.lake.schema import DEVICE_COLUMN
from modelcycle.monitoring.anomaly_runs import anomalous_runs
from modelcycle.monitoring.scoring import read_scores
from modelcycle.storage import ObjectStore

TRUTH_COLUMNS = ("device_id", "kind", "start", "end")


@dataclass(frozen=True)
class Confusion:
    """Device-day counts of one alerting method against the truth."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


@dataclass(frozen=True)
class AnomalyQuality:
    model: str
    days: list[date]
    device_days: int
    truly_anomalous: int
    detector: Confusion
    rule: Confusion
    rule_threshold: float
    rule_consecutive: int
    detector_min_windows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "days": [d.isoformat() for d in self.days],
            "device_days": self.device_days,
            "truly_anomalous": self.truly_anomalous,
            "detector": {**self.detector.as_dict(), "min_windows": self.detector_min_windows},
            "rule": {
                **self.rule.as_dict(),
                "threshold": self.rule_threshold,
                "consecutive": self.rule_consecutive,
            },
        }


def read_truth(raw: ObjectStore) -> pl.DataFrame:
    """The simulator's injected events; a clear error when the raw area has none."""
    if not raw.exists(layout.TRUTH_FILE):
        raise DataNotFoundError(
            f"no injected-event truth at {raw.url(layout.TRUTH_FILE)}: "
            "only a fleet written by `modelcycle simulate` can be measured"
        )
    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw.read_bytes(layout.TRUTH_FILE)),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "device_id": pa.string(),
                    "kind": pa.string(),
                    "start": pa.timestamp("s"),
                    "end": pa.timestamp("s"),
                },
                include_columns=list(TRUTH_COLUMNS),
            ),
        )
    except (pa.ArrowInvalid, KeyError) as error:
        reason = str(error).splitlines()[0]
        raise InvalidInputError(f"{raw.url(layout.TRUTH_FILE)} is not valid: {reason}") from error
    return pl.DataFrame(pl.from_arrow(table))


def truth_device_days(truth: pl.DataFrame, day: date) -> set[str]:
    """Devices with an injected anomaly or fault signature at some minute of `day`."""
    day_start = datetime.combine(day, time())
    day_end = day_start + timedelta(days=1)
    overlapping = truth.filter((pl.col("start") < day_end) & (pl.col("end") > day_start))
    return set(overlapping.get_column("device_id").to_list())


def detector_device_days(scores: pl.DataFrame, min_windows: int) -> set[str]:
    flagged = (
        scores.filter(pl.col("flagged"))
        .group_by(DEVICE_COLUMN)
        .agg(windows=pl.len())
        .filter(pl.col("windows") >= min_windows)
    )
    return set(flagged.get_column(DEVICE_COLUMN).to_list())


def _confusion(flagged: set[str], truth: set[str], devices: set[str]) -> Confusion:
    return Confusion(
        true_positives=len(flagged & truth),
        false_positives=len(flagged - truth),
        false_negatives=len(truth - flagged),
        true_negatives=len(devices - flagged - truth),
    )


def _add(a: Confusion, b: Confusion) -> Confusion:
    return Confusion(
        a.true_positives + b.true_positives,
        a.false_positives + b.false_positives,
        a.false_negatives + b.false_negatives,
        a.true_negatives + b.true_negatives,
    )


def measure_anomaly_quality(
    *,
    lake: ObjectStore,
    raw: ObjectStore,
    model: str,
    days: list[date],
    threshold: float,
    consecutive: int,
    min_windows: int = 1,
) -> AnomalyQuality:
    """Detector and rule against the truth over `days`, from the scores already in the lake."""
    if not days:
        raise InvalidInputError("no days to measure: give at least one scored day")
    truth = read_truth(raw)
    detector = rule = Confusion(0, 0, 0, 0)
    device_days = anomalous = 0
    for day in days:
        table = read_scores(lake, day, model)
        if table is None:
            raise DataNotFoundError(f"no {model} scores for {day}: run `modelcycle score` first")
        scores = pl.DataFrame(pl.from_arrow(table)).select(
            DEVICE_COLUMN, WINDOW_START, "score", "flagged"
        )
        devices = set(scores.get_column(DEVICE_COLUMN).unique().to_list())
        actual = truth_device_days(truth, day) & devices
        fired = set(
            anomalous_runs(scores, threshold, consecutive).get_column(DEVICE_COLUMN).to_list()
        )
        detector = _add(
            detector, _confusion(detector_device_days(scores, min_windows), actual, devices)
        )
        rule = _add(rule, _confusion(fired, actual, devices))
        device_days += len(devices)
        anomalous += len(actual)
    return AnomalyQuality(
        model=model,
        days=days,
        device_days=device_days,
        truly_anomalous=anomalous,
        detector=detector,
        rule=rule,
        rule_threshold=threshold,
        rule_consecutive=consecutive,
        detector_min_windows=min_windows,
    )
