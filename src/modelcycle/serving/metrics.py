"""Prometheus metrics of the API, in a registry of its own (one per app, so tests do not collide).

Request counters and latency are recorded as requests finish; model facts (version, age, reloads,
cache errors) and the health of the background tasks are read from the objects that hold them when
Prometheus scrapes, so they are never stale. The accuracy gauge is read from a source the API keeps
warm, so a scrape never waits for the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelcycle.serving.background import BackgroundTasks
from modelcycle.serving.manager import ModelManager
from modelcycle.serving.prediction_log import PredictionLog
from modelcycle.serving.shadow import ShadowScorer

log = structlog.get_logger(__name__)

# Each served model's average accuracy over this many evaluated days; the metric name says 7d.
ACCURACY_WINDOW_DAYS = 7

AccuracySource = Callable[[], Mapping[str, float]]

# Latency buckets around what this API answers in: well under a millisecond to a second.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ModelCollector(Collector):
    """Version info, age and reload outcomes of each served model, at scrape time."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "modelcycle_model_info",
            "The served version of each model (value 1).",
            labels=["model", "version", "alias", "sha256", "source"],
        )
        age = GaugeMetricFamily(
            "modelcycle_model_age_seconds",
            "Seconds since the served (champion) version was trained: the stale alert's age.",
            labels=["model"],
        )
        reloads = CounterMetricFamily(
            "modelcycle_model_reloads",
            "Model refreshes by outcome: loaded, unchanged, failed, refused.",
            labels=["model", "outcome"],
        )
        cache_errors = CounterMetricFamily(
            "modelcycle_serving_cache_errors",
            "Serving-cache failures by operation: read (entry ignored), write, prune.",
            labels=["model", "operation"],
        )
        now = self.manager.clock()
        for name in self.manager.names:
            model, status = self.manager.describe(name)
            if model is not None:
                record = model.record
                info.add_metric(
                    [name, record.version, record.alias, record.sha256, model.source], 1.0
                )
                age.add_metric([name], (now - record.trained_at).total_seconds())
            for outcome in ("loaded", "unchanged", "failed", "refused"):
                reloads.add_metric([name, outcome], float(status.reloads[outcome]))
            for operation in ("read", "write", "prune"):
                cache_errors.add_metric([name, operation], float(status.cache_errors[operation]))
        yield info
        yield age
        yield reloads
        yield cache_errors


class BackgroundCollector(Collector):
    """Whether each background task runs, its failures, its last success; the prediction log's
    rows written, buffered and dropped. Read at scrape time."""

    def __init__(self, background: BackgroundTasks, prediction_log: PredictionLog | None):
        self.background = background
        self.prediction_log = prediction_log

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "modelcycle_background_task_up",
            "1 while the background task runs, 0 once it has stopped.",
            labels=["task"],
        )
        errors = CounterMetricFamily(
            "modelcycle_background_task_errors",
            "Rounds of the background task that failed (and were retried).",
            labels=["task"],
        )
        failing = GaugeMetricFamily(
            "modelcycle_background_task_consecutive_failures",
            "Rounds in a row that failed; 0 after a success.",
            labels=["task"],
        )
        last_success = GaugeMetricFamily(
            "modelcycle_background_task_last_success_timestamp_seconds",
            "Unix time of the task's last successful round.",
            labels=["task"],
        )
        for health in self.background:
            up.add_metric([health.name], 1.0 if health.running else 0.0)
            errors.add_metric([health.name], float(health.errors))
            failing.add_metric([health.name], float(health.consecutive_failures))
            if health.last_success is not None:
                last_success.add_metric([health.name], health.last_success.timestamp())
        yield from (up, errors, failing, last_success)
        if self.prediction_log is not None and self.prediction_log.lake is not None:
            yield from self._prediction_log(self.prediction_log)

    @staticmethod
    def _prediction_log(prediction_log: PredictionLog) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "modelcycle_prediction_log_rows_written",
            "Predictions written to the lake.",
            value=float(prediction_log.rows_written),
        )
        yield CounterMetricFamily(
            "modelcycle_prediction_log_rows_dropped",
            "Predictions dropped unwritten: the oldest, once the buffer was full.",
            value=float(prediction_log.rows_dropped),
        )
        yield GaugeMetricFamily(
            "modelcycle_prediction_log_buffered_rows",
            "Predictions waiting to be written.",
            value=float(prediction_log.buffered_rows),
        )


class ShadowCollector(Collector):
    """Shadow scoring: the challenger version each model is shadowed with, rows it scored and
    wrote, requests dropped for a full queue, failures. Read at scrape time."""

    def __init__(self, shadow: ShadowScorer):
        self.shadow = shadow

    def collect(self) -> Iterator[Metric]:
        shadow = self.shadow
        info = GaugeMetricFamily(
            "modelcycle_shadow_model_info",
            "The version shadow scoring holds for each model (value 1).",
            labels=["model", "version", "alias"],
        )
        for name, state in sorted(shadow.challengers.items()):
            if state.version is not None:
                info.add_metric([name, state.version, shadow.alias], 1.0)
        yield info
        counters = (
            ("rows_scored", "Rows the challenger scored in the shadow.", shadow.rows_scored),
            ("batches", "Batches of queued requests the shadow worker scored.", shadow.batches),
            ("rows_written", "Shadow rows written to the lake.", shadow.rows_written),
            ("requests_dropped", "Requests not shadowed: the queue was full.", shadow.dropped),
            ("requests_skipped", "Requests not shadowed: not sampled.", shadow.skipped),
            ("requests_shed", "Requests not shadowed: the API was saturated.", shadow.shed),
            ("requests_lost", "Requests sent to a shadow worker that died.", shadow.lost),
            ("errors", "Failed shadow scorings and worker deaths.", shadow.health.errors),
            ("worker_restarts", "Times the shadow worker process was restarted.", shadow.restarts),
        )
        for name, text, value in counters:
            yield CounterMetricFamily(f"modelcycle_shadow_{name}", text, value=float(value))
        yield GaugeMetricFamily(
            "modelcycle_shadow_queued_requests",
            "Requests waiting for shadow scoring.",
            value=float(shadow.queued),
        )
        yield GaugeMetricFamily(
            "modelcycle_shadow_worker_resident_bytes",
            "Resident memory of the shadow worker process, as it last reported.",
            value=float(shadow.worker_rss_bytes or 0),
        )


def _accuracy_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "modelcycle_model_accuracy_7d",
        f"Average accuracy of the model over its last {ACCURACY_WINDOW_DAYS} evaluated days.",
        labels=["model"],
    )


class AccuracyCollector(Collector):
    """Each model's 7-day accuracy from `source`, at scrape time; a model without one is left out.

    The source must be cheap (the API passes a cache its poll loop refreshes). If it raises, this
    scrape has no accuracy gauge, and every other metric is still answered.
    """

    def __init__(self, source: AccuracySource):
        self.source = source

    def describe(self) -> Iterator[Metric]:
        """The family without samples: registering the collector does not call the source."""
        yield _accuracy_family()

    def collect(self) -> Iterator[Metric]:
        try:
            values = dict(self.source())
        except Exception as error:  # noqa: BLE001 - a broken source must not fail the whole scrape
            log.warning("accuracy gauge left out of this scrape", error=repr(error))
            return
        accuracy = _accuracy_family()
        for name, value in sorted(values.items()):
            if math.isfinite(value):
                accuracy.add_metric([name], value)
        yield accuracy


class ApiMetrics:
    """The metrics one app instance records."""

    def __init__(
        self,
        manager: ModelManager,
        *,
        accuracy_source: AccuracySource | None = None,
        background: BackgroundTasks | None = None,
        prediction_log: PredictionLog | None = None,
        shadow: ShadowScorer | None = None,
    ):
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` doubles the output
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelcycle_requests",
            "HTTP requests by route, model and status code.",
            labelnames=["route", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelcycle_request_duration_seconds",
            "Time to answer a request, by route and model.",
            labelnames=["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry.register(ModelCollector(manager))
        if background is not None:
            self.registry.register(BackgroundCollector(background, prediction_log))
        if accuracy_source is not None:
            self.registry.register(AccuracyCollector(accuracy_source))
        if shadow is not None:
            self.registry.register(ShadowCollector(shadow))

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        key = (route, model, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per label set
            children = (
                self.requests.labels(route, model, str(status)),
                self.latency.labels(route, model),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
