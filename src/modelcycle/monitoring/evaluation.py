"""Live accuracy, measured when the labels arrive: the maintenance ledger, late as in the field.

A day can be judged once the ledger has been kept past its end (its newest confirmation is after
the day). Before that, every window would look healthy, and the metrics would be false; so an
evaluation of such a day is refused and nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from modelcycle.errors import DataNotFoundError
from modelcycle.training.labels import label_windows
from modelcycle.training.metrics import binary_metrics


class LabelsNotReadyError(DataNotFoundError):
    """The ground truth for a day has not arrived yet."""


@dataclass(frozen=True)
class DayMetrics:
    n_rows: int
    n_positive: int
    metrics: dict[str, float]


def ledger_as_of(ledger: pa.Table) -> datetime | None:
    """How far the ledger has been kept: its newest confirmation."""
    if ledger.num_rows == 0:
        return None
    newest = pc.max(ledger.column("confirmed_at")).as_py()
    return newest if isinstance(newest, datetime) else None


def labels_known_at(ledger: pa.Table, day: date) -> datetime:
    """The ledger's as-of time, if it covers the whole day; otherwise a clear refusal."""
    as_of = ledger_as_of(ledger)
    day_end = datetime.combine(day + timedelta(days=1), time())
    if as_of is None or as_of < day_end:
        kept = f"is kept until {as_of:%Y-%m-%d %H:%M}" if as_of else "is empty"
        raise LabelsNotReadyError(
            f"no labels for {day} yet: the maintenance ledger {kept}; nothing was recorded"
        )
    return as_of


def day_labels(windows: pa.Table, ledger: pa.Table, known_at: datetime) -> NDArray[np.int_]:
    labels: NDArray[np.int_] = label_windows(windows, ledger, known_at).to_numpy().astype(np.int_)
    return labels


def metrics_for(
    labels: NDArray[np.int_], scores: NDArray[np.floating], threshold: float
) -> DayMetrics:
    predicted = (scores >= threshold).astype(np.int_)
    return DayMetrics(
        n_rows=len(labels),
        n_positive=int(labels.sum()),
        metrics=binary_metrics(labels, scores, predicted),
    )
