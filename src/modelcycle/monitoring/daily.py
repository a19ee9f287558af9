"""The daily monitoring steps, as the CLI and the scheduler run them: score, then evaluate.

`score_day` has every model's champion score a day's device-windows (scores to the lake) and
measures the day's feature drift against the champion's training data. `evaluate_day` waits for
the day's labels, then records the champion's (and challenger's) metrics on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import structlog
from mlflow.tracking import MlflowClient
from numpy.typing import NDArray

from modelcycle.errors import DataNotFoundError
from modelcycle.features.store import load_features
from modelcycle.features.windows import FeatureSpec
from modelcycle.lake import layout
from modelcycle.monitoring import records
from modelcycle.monitoring.champions import ServedVersion, open_version
from modelcycle.monitoring.drift import DriftReport, feature_drift
from modelcycle.monitoring.evaluation import day_labels, labels_known_at, metrics_for
from modelcycle.monitoring.online import online_predictions
from modelcycle.monitoring.scoring import (
    day_features,
    feature_matrix,
    predict_all,
    score_table,
    write_scores,
)
from modelcycle.registry.connection import registry_client
from modelcycle.registry.loading import RegistrySource
from modelcycle.registry.versions import CHALLENGER, CHAMPION
from modelcycle.settings import Settings
from modelcycle.storage import ObjectStore
from modelcycle.storage.configured import lake_store, raw_store
from modelcycle.store import Store, open_store
from modelcycle.training.labels import read_ledger

log = structlog.get_logger(__name__)


@dataclass
class Monitoring:
    """What the daily steps need, built once from settings."""

    settings: Settings
    lake: ObjectStore
    raw: ObjectStore
    store: Store
    source: RegistrySource = field(init=False)
    client: MlflowClient = field(init=False)
    _references: dict[tuple[tuple[date, ...], FeatureSpec], pa.Table] = field(
        default_factory=dict, init=False
    )
    # Both models usually share training days and features: measure their drift once.
    _drifts: dict[tuple[date, tuple[date, ...], tuple[str, ...]], DriftReport | None] = field(
        default_factory=dict, init=False
    )

    def __post_init__(self) -> None:
        self.source = RegistrySource(self.settings)
        self.client, _ = registry_client(self.settings)

    def open(self, name: str, alias: str) -> ServedVersion:
        return open_version(self.source, self.client, name, alias)

    def drift(self, served: ServedVersion, day: date, features: pa.Table) -> DriftReport | None:
        """The day's drift against the version's training data, measured once per day,
        training window and feature list (both models usually share all three)."""
        key = (day, tuple(served.training_days), served.model.features)
        if key not in self._drifts:
            self._drifts[key] = _measure_drift(self, served, features)
        return self._drifts[key]

    def reference(self, served: ServedVersion) -> pa.Table | None:
        """The version's training features, read once per training window."""
        days = tuple(
            d for d in served.training_days if self.lake.exists(layout.readings_partition(d))
        )
        if not days:
            return None
        key = (days, served.model.spec)
        if key not in self._references:
            self._references[key] = load_features(self.lake, list(days), served.model.spec)
        return self._references[key]


@contextmanager
def open_monitoring(settings: Settings) -> Iterator[Monitoring]:
    """Monitoring over the configured lake, raw area and store; the store closed afterwards."""
    store = open_store(settings)
    try:
        yield Monitoring(
            settings=settings, lake=lake_store(settings), raw=raw_store(settings), store=store
        )
    finally:
        store.close()


@dataclass(frozen=True)
class ScoredModel:
    model: str
    version: str
    n_windows: int
    n_flagged: int
    location: str
    drift: DriftReport | None


@dataclass(frozen=True)
class EvaluatedModel:
    model: str
    version: str
    role: str
    n_rows: int
    n_positive: int
    metrics: dict[str, float]


def _measure_drift(
    monitoring: Monitoring, served: ServedVersion, features: pa.Table
) -> DriftReport | None:
    reference = monitoring.reference(served)
    if reference is None or reference.num_rows == 0 or features.num_rows == 0:
        log.warning("no training data in the lake to measure drift against", model=served.name)
        return None
    names = served.model.features
    return feature_drift(names, feature_matrix(reference, names), feature_matrix(features, names))


def score_day(
    monitoring: Monitoring, day: date, on_model: Callable[[str], None] | None = None
) -> list[ScoredModel]:
    """Every model's champion scores the day; scores to the lake, drift to the store."""
    results = []
    for name in monitoring.settings.model_names:
        served = monitoring.open(name, CHAMPION)
        features = day_features(monitoring.lake, day, served)
        table = score_table(features, served)
        location = write_scores(monitoring.lake, day, table)
        drift = monitoring.drift(served, day, features)
        with monitoring.store.session() as session:
            records.replace_score_run(
                session,
                model=name,
                version=served.version,
                day=day,
                n_windows=table.num_rows,
                location=monitoring.lake.url(location),
            )
            if drift is not None:
                records.replace_drift(
                    session, model=name, version=served.version, day=day, report=drift
                )
        flagged = int(table.column("flagged").to_numpy(zero_copy_only=False).sum())
        log.info(
            "scored", model=name, version=served.version, date=str(day), windows=table.num_rows
        )
        results.append(ScoredModel(name, served.version, table.num_rows, flagged, location, drift))
        if on_model:
            on_model(name)
    return results


def _versions_to_evaluate(monitoring: Monitoring, name: str) -> list[ServedVersion]:
    champion = monitoring.open(name, CHAMPION)
    try:
        challenger = monitoring.open(name, CHALLENGER)
    except DataNotFoundError:
        return [champion]
    if challenger.version == champion.version:
        return [champion]
    return [champion, challenger]


def evaluate_day(
    monitoring: Monitoring, day: date, *, known_at: datetime | None = None
) -> list[EvaluatedModel]:
    """Metrics of each model's champion and challenger on a labelled day; replaced on re-run.

    The champion's online predictions of the day (the API's prediction log) are judged too.
    """
    ledger = read_ledger(monitoring.raw)
    known = known_at or labels_known_at(ledger, day)
    results = []
    for name in monitoring.settings.model_names:
        for served in _versions_to_evaluate(monitoring, name):
            features = day_features(monitoring.lake, day, served)
            if features.num_rows == 0:
                raise DataNotFoundError(f"day {day} has no device-windows in the lake")
            scores = predict_all(served, feature_matrix(features, served.model.features))
            judged = _Judged(monitoring, day, served, ledger, known)
            results.append(judged.record(features, scores, source="batch"))
            if served.role != CHAMPION:
                continue
            predictions = online_predictions(monitoring.lake, day, name, served.version)
            if predictions is not None:
                online = predictions.column("score").to_numpy(zero_copy_only=False)
                results.append(judged.record(predictions, online, source="online"))
    return results


@dataclass(frozen=True)
class _Judged:
    """One version on one day: labels its windows, records the metrics of its scores."""

    monitoring: Monitoring
    day: date
    served: ServedVersion
    ledger: pa.Table
    known: datetime

    def record(
        self, windows: pa.Table, scores: NDArray[np.floating], *, source: str
    ) -> EvaluatedModel:
        labels = day_labels(windows, self.ledger, self.known)
        result = metrics_for(labels, scores, self.served.decision_threshold)
        with self.monitoring.store.session() as session:
            records.replace_evaluation(
                session,
                model=self.served.name,
                version=self.served.version,
                role=self.served.role,
                source=source,
                day=self.day,
                result=result,
                labels_known_at=self.known,
            )
        role = self.served.role if source == "batch" else source
        return EvaluatedModel(
            self.served.name,
            self.served.version,
            role,
            result.n_rows,
            result.n_positive,
            result.metrics,
        )
