"""The agent's health: counters in a Prometheus registry of its own, ``/healthz`` and ``/metrics``.

:class:`AgentMetrics` holds what the runtime counts as readings flow (in, out, dead letters by
reason, last-seen per asset) plus a collector that asks the sources, the spool and the forwarder
for their state at scrape time (so a gauge can never be stale). The registry is injected - never
``prometheus_client``'s global one - so two agents (or a test and an agent) in one process do not
collide.

:class:`HealthServer` serves both on a small thread (``http.server``): the agent's hot path
never waits for a scrape, and the health endpoint keeps answering even if the event loop is
stuck - which is exactly when an operator needs it.

``/healthz`` answers 200 with ``{"status": "ok", ...}`` when every source is connected and the
spool's oldest reading is younger than ``max_spool_age_s``; otherwise 503 with
``"status": "degraded"`` and the reasons.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

NS = 1_000_000_000


class AgentMetrics:
    """Counters the runtime updates (thread-safe: prometheus_client metrics lock themselves)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.readings_in = Counter(
            "kilnworks_agent_readings_in",
            "Readings a source handed to the agent",
            ["source"],
            registry=registry,
        )
        self.readings_out = Counter(
            "kilnworks_agent_readings_out",
            "Readings made durable in the spool",
            ["source"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "kilnworks_agent_dead_letters",
            "Input refused and kept in the dead-letter table, by reason",
            ["source", "reason"],
            registry=registry,
        )
        self.last_seen = Gauge(
            "kilnworks_agent_asset_last_seen_timestamp_seconds",
            "When the agent last received anything from the asset (agent clock, Unix seconds)",
            ["asset"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self.last_seen_ns: dict[str, int] = {}

    def saw(self, asset: str, time_ns: int) -> None:
        with self._lock:
            if time_ns > self.last_seen_ns.get(asset, 0):
                self.last_seen_ns[asset] = time_ns
                self.last_seen.labels(asset).set(time_ns / NS)


class StateCollector:
    """Gauges read at scrape time from the live objects (sources, spool, forwarder)."""

    def __init__(
        self,
        sources: Callable[[], dict[str, dict[str, Any]]],
        spool: Callable[[], dict[str, Any]],
        forwarder: Callable[[], dict[str, Any]],
    ) -> None:
        self._sources = sources
        self._spool = spool
        self._forwarder = forwarder

    def collect(self) -> Iterable[Any]:
        sources = self._safe(self._sources)
        connected = GaugeMetricFamily(
            "kilnworks_agent_source_connected", "1 while the source is connected", labels=["source"]
        )
        reconnects = CounterMetricFamily(
            "kilnworks_agent_source_reconnects",
            "Sessions re-established after a loss",
            labels=["source"],
        )
        for name, st in sorted(sources.items()):
            connected.add_metric([name], 1.0 if st.get("connected") else 0.0)
            reconnects.add_metric([name], float(st.get("reconnects", 0) or 0))
        yield connected
        yield reconnects
        spool = self._safe(self._spool)
        yield GaugeMetricFamily(
            "kilnworks_agent_spool_depth_readings",
            "Readings waiting in the spool",
            value=float(spool.get("depth", 0) or 0),
        )
        age = spool.get("oldest_age_s")
        yield GaugeMetricFamily(
            "kilnworks_agent_spool_oldest_age_seconds",
            "Age of the oldest reading waiting in the spool (0 when empty)",
            value=float(age or 0.0),
        )
        dropped = CounterMetricFamily(
            "kilnworks_agent_spool_dropped_readings",
            "Readings the spool dropped to stay within its size, by reason",
            labels=["reason"],
        )
        for reason, n in sorted((spool.get("dropped") or {}).items()):
            dropped.add_metric([reason], float(n))
        yield dropped
        fwd = self._safe(self._forwarder)
        yield CounterMetricFamily(
            "kilnworks_agent_forwarded_readings",
            "Readings the forwarder delivered to the store",
            value=float(fwd.get("forwarded", 0) or 0),
        )
        yield GaugeMetricFamily(
            "kilnworks_agent_store_backoff_seconds",
            "Current retry backoff of the forwarder (0 while the store takes data)",
            value=float(fwd.get("backoff_s", 0.0) or 0.0),
        )

    @staticmethod
    def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        # A scrape must never fail because one part is shutting down.
        try:
            return fn() or {}
        except Exception as exc:
            log.debug("health: state unavailable: %s", exc)
            return {}


def health_report(
    sources: dict[str, dict[str, Any]], spool: dict[str, Any], max_spool_age_s: float
) -> tuple[bool, dict[str, Any]]:
    """(healthy, JSON body) from the sources' status and the spool state."""
    problems = [
        f"source {n} disconnected" for n, s in sorted(sources.items()) if not s.get("connected")
    ]
    for name, status in sorted(sources.items()):
        nodes, monitored = status.get("nodes"), status.get("monitored")
        if status.get("connected") and nodes and monitored is not None and monitored < nodes:
            problems.append(f"source {name}: {nodes - monitored} of {nodes} nodes not monitored")
    age = spool.get("oldest_age_s")
    if age is not None and age > max_spool_age_s:
        problems.append(f"spool oldest reading {age:.0f} s old (store not taking data?)")
    ok = not problems
    return ok, {
        "status": "ok" if ok else "degraded",
        "problems": problems,
        "sources": sources,
        "spool": spool,
    }


class HealthServer:
    """``/healthz`` and ``/metrics`` on ``host:port`` (port 0 picks a free one; see ``port``)."""

    def __init__(
        self,
        listen: str,
        registry: CollectorRegistry,
        report: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.registry = registry
        self.report = report
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = generate_latest(server.registry)
                    self._send(200, CONTENT_TYPE_LATEST, body)
                elif path in ("/healthz", "/health"):
                    try:
                        ok, doc = server.report()
                    except Exception as exc:  # report the failure instead of a dead socket
                        ok, doc = False, {"status": "error", "problems": [repr(exc)]}
                    body = json.dumps(doc, default=str).encode()
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                log.debug("health: " + format, *args)

        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="agent-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
