"""Prometheus metrics of one gateway (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from tandemlm.models.base import LanguageModel
from tandemlm.types import Completion

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Request-level series (latency, tokens, cost, errors) plus per-model series read from the engines at each
    scrape: calls (failed and cancelled ones too), queue depth, wait and busy time of each model's owner."""

    def __init__(self, models: Callable[[], list[LanguageModel]]) -> None:
        disable_created_metrics()  # process-wide: the *_created series only add noise to scrapes
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tandem_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "tandem_request_latency_seconds", "Request latency by pipeline and endpoint", ["pipeline", "endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "tandem_tokens", "Tokens by model, location and kind", ["model", "location", "kind"], registry=r
        )
        self.cost = Counter("tandem_cost_usd", "Cost in USD by model and location", ["model", "location"], registry=r)
        self.answered = Counter("tandem_answers", "Answered requests by pipeline", ["pipeline"], registry=r)
        self.cloud_answers = Counter(
            "tandem_answers_with_cloud", "Answered requests that called a cloud model", ["pipeline"], registry=r
        )
        self.cloud_share = Gauge("tandem_cloud_call_share", "Share of answered requests that called a cloud model",
                                 registry=r)  # fmt: skip
        self.errors = Counter("tandem_errors", "Errors by type", ["type"], registry=r)
        r.register(_ModelCollector(models))
        self._answers = 0
        self._with_cloud = 0
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus_client validates and locks on every `labels` call,
        which made a request's accounting cost ~70 µs."""
        key = (id(metric), labels)
        if (found := self._children.get(key)) is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def request(self, endpoint: str, status: int) -> None:
        """Count one HTTP request by endpoint and status."""
        self.child(self.requests, endpoint, str(status)).inc()

    def observe(self, pipeline: str, endpoint: str, completion: Completion, seconds: float) -> None:
        """Account one answered request: latency, and tokens, cost and location of every model call in its trace."""
        self.child(self.latency, pipeline, endpoint).observe(seconds)
        cloud = False
        for e in completion.trace:
            self.child(self.tokens, e.model, e.location, "prompt").inc(e.usage.prompt_tokens)
            self.child(self.tokens, e.model, e.location, "completion").inc(e.usage.completion_tokens)
            self.child(self.cost, e.model, e.location).inc(e.cost_usd)
            cloud = cloud or e.location == "cloud"
        self.child(self.answered, pipeline).inc()
        self._answers += 1
        if cloud:
            self.child(self.cloud_answers, pipeline).inc()
            self._with_cloud += 1
        self.cloud_share.set(self._with_cloud / self._answers)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ModelCollector(Collector):
    def __init__(self, models: Callable[[], list[LanguageModel]]) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("tandem_model_calls", "Model calls started, by model and location",
                                    labels=["model", "location"])  # fmt: skip
        depth = GaugeMetricFamily("tandem_model_queue_depth", "Operations waiting for a model", labels=["model"])
        ops = CounterMetricFamily("tandem_model_operations", "Operations a model's owner ran", labels=["model"])
        busy = CounterMetricFamily("tandem_model_busy_seconds", "Time a model spent running operations",
                                   labels=["model"])  # fmt: skip
        wait = CounterMetricFamily("tandem_model_wait_seconds", "Time operations waited for a model, in all",
                                   labels=["model"])  # fmt: skip
        rejected = CounterMetricFamily("tandem_model_rejected", "Operations refused: the queue was full",
                                       labels=["model"])  # fmt: skip
        for model in self.models():
            calls.add_metric([model.name, model.location], model.calls)
            if model.owner is None:
                continue
            stats = model.owner.stats
            depth.add_metric([model.name], stats.queued)
            ops.add_metric([model.name], stats.operations)
            busy.add_metric([model.name], stats.busy_s)
            wait.add_metric([model.name], stats.wait_s)
            rejected.add_metric([model.name], stats.rejected)
        yield from (calls, depth, ops, busy, wait, rejected)
