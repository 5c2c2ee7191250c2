"""Request metrics of the API, in Prometheus form (``GET /api/v1/metrics``, admin token).

A pure ASGI middleware counts requests by method, route *template* (``/assets/{enterprise}/...``,
never the concrete path, which would leak ids into labels and explode their number) and status,
and times them. The registry belongs to the app (``AppContext.metrics``): no global registry,
so two apps in one process (tests, the demo) never share counters.

The OEE cache's counters (``kilnworks_api_oee_cache_*``) are read from the cache itself when
scraped (:meth:`ApiMetrics.watch_oee_cache`), so they can never drift from what it did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.services.oee_cache import CacheStats

# Latency buckets in seconds: dashboard calls run from ~1 ms (latest values) to seconds
# (a long firing report from InfluxDB).
BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The API's counters and histograms in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kilnworks_api_requests",
            "API requests answered",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "kilnworks_api_request_duration_seconds",
            "Time to answer an API request",
            ("method", "route"),
            buckets=BUCKETS_S,
            registry=self.registry,
        )

    def watch_oee_cache(self, stats: Callable[[], CacheStats]) -> None:
        """Expose the OEE cache's counters, read through ``stats`` at every scrape."""
        self.registry.register(_OeeCacheCollector(stats))


class _OeeCacheCollector(Collector):
    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        lookups = CounterMetricFamily(
            "kilnworks_api_oee_cache_lookups",
            "Per-asset OEE results asked of the cache, by result: hit (from an entry), miss "
            "(computed from the store), wait (shared a concurrent request's computation)",
            labels=("result",),
        )
        lookups.add_metric(("hit",), s.hits)
        lookups.add_metric(("miss",), s.misses)
        lookups.add_metric(("wait",), s.waits)
        yield lookups
        yield CounterMetricFamily(
            "kilnworks_api_oee_cache_invalidations",
            "Times an asset's cached OEE results were dropped (its gradings or firings changed)",
            value=s.invalidations,
        )
        yield CounterMetricFamily(
            "kilnworks_api_oee_cache_evictions",
            "Cached OEE results dropped to stay within oee_cache_entries",
            value=s.evictions,
        )
        yield GaugeMetricFamily(
            "kilnworks_api_oee_cache_entries", "Per-asset OEE results held", value=s.entries
        )


class MetricsMiddleware:
    """Counts and times every HTTP request into an :class:`ApiMetrics`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
