"""Prometheus metrics of the API, in a registry of its own (one per app, so tests do not collide).

Request counters and latency are recorded as requests finish; model facts (version, age, reloads)
are read from the model manager when Prometheus scrapes, so they are never stale. The accuracy
gauge is read from a source the API keeps warm, so a scrape never waits for the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelcycle.serving.manager import ModelManager

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
            "Seconds since the served version was registered (trained).",
            labels=["model"],
        )
        reloads = CounterMetricFamily(
            "modelcycle_model_reloads",
            "Model refreshes by outcome: loaded, unchanged, failed, refused.",
            labels=["model", "outcome"],
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
        yield info
        yield age
        yield reloads


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

    def __init__(self, manager: ModelManager, *, accuracy_source: AccuracySource | None = None):
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
        self.registry.register(ModelCollector(manager))
        if accuracy_source is not None:
            self.registry.register(AccuracyCollector(accuracy_source))

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        self.requests.labels(route, model, str(status)).inc()
        self.latency.labels(route, model).observe(seconds)
