"""Prometheus metrics of the API, in a registry of its own (one per app, so tests do not collide).

Request counters and latency are recorded as requests finish; model facts (version, age, reloads)
are read from the model manager when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelcycle.serving.manager import ModelManager

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


class ApiMetrics:
    """The metrics one app instance records."""

    def __init__(self, manager: ModelManager):
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

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        self.requests.labels(route, model, str(status)).inc()
        self.latency.labels(route, model).observe(seconds)
