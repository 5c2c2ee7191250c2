"""The agent: builds the sources from config, runs them, and is the Output they deliver to.

Picture (docs/edge-agent.md has the long version)::

    source tasks --Output.accept--> Guard --> Spool (durable, fsynced) --Forwarder thread--> store
                 \\--Output.reject--> dead-letter table (same spool file)

* :class:`AgentOutput` implements :class:`edge_agent.source.Output`: it checks every reading
  with :class:`edge_agent.guard.Guard`, dead-letters the refused ones with their reason, puts
  the rest into the spool and returns only once they are durable. It counts everything.
* :class:`Agent` owns the lifecycle: open the spool, open the store, start the forwarder,
  start the health server, run one task per source (restarted after a backoff if it ever
  raises), and on stop do it all in reverse, draining what it can.

Entry points: ``Agent(config).run()`` blocks until SIGINT/SIGTERM (the CLI);
``start()``/``stop()`` run it on a thread of its own (``kilnworks demo``, tests);
``await agent.run_async(stop_event)`` inside an existing event loop.

Collaborators are injected (spool, store and source factories, clock, Prometheus registry) so
tests can swap any of them; the defaults are the real ones from ``ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from core.reading import Reading, ReadingBatch, now_ns
from edge_agent.config import AgentConfig, OpcUaConfig
from edge_agent.guard import Guard
from edge_agent.health import AgentMetrics, HealthServer, StateCollector, health_report
from edge_agent.source import Output, Source

log = logging.getLogger(__name__)

NS = 1_000_000_000

# Log the first few dead letters of each (source, reason), then one in LOG_EVERY: a flood of
# malformed payloads must not turn into a flood of log lines (the table keeps every one).
LOG_FIRST = 5
LOG_EVERY = 1000


class AgentOutput:
    """The :class:`edge_agent.source.Output` of the agent (see module docstring). Thread-safe:
    the spool serialises writers; the metrics lock themselves."""

    def __init__(
        self,
        spool: Any,
        guard: Guard,
        metrics: AgentMetrics,
        *,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.spool = spool
        self.guard = guard
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()
        self._dead_counts: dict[tuple[str, str], int] = {}

    def accept(self, source: str, readings: list[Reading]) -> None:
        """Guard, dead-letter the refused, spool the rest; durable when this returns. Raises
        only what the spool raises (disk failure): the caller must then not acknowledge."""
        if not readings:
            return
        now = self.clock()
        self.metrics.readings_in.labels(source).inc(len(readings))
        good, refused = self.guard.split(readings, now)
        for refusal in refused:
            self._dead_letter(source, refusal.reason, refusal.detail, None, refusal.reading)
        if not good:
            return
        result = self.spool.put(ReadingBatch.from_readings(good))
        # The spool copies readings it refuses (policy reject_new when full, invalid) into its
        # own dead-letter table; here they are only counted and logged.
        for rejected in result.rejected:
            self._count_dead(source, _reason_key(rejected.reason), str(rejected.reading))
        stored = len(good) - len(result.rejected)
        if stored:
            self.metrics.readings_out.labels(source).inc(stored)
        latest: dict[str, int] = {}
        for r in good:
            latest[r.asset] = r.received_time_ns
        for asset, t in latest.items():
            self.metrics.saw(asset, t)

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None = None) -> None:
        """Dead-letter input that never became a reading (see the Output protocol)."""
        self._dead_letter(source, reason, detail, raw, None)

    def seen(self, source: str, asset: str, time_ns: int) -> None:
        self.metrics.saw(asset, time_ns)

    def _dead_letter(
        self,
        source: str,
        reason: str,
        detail: str,
        raw: bytes | str | None,
        reading: Reading | None,
    ) -> None:
        self.spool.dead_letter(source, reason, detail, raw=raw, reading=reading)
        self._count_dead(source, reason, detail)

    def _count_dead(self, source: str, reason: str, detail: str) -> None:
        self.metrics.dead_letters.labels(source, reason).inc()
        with self._lock:
            n = self._dead_counts.get((source, reason), 0) + 1
            self._dead_counts[(source, reason)] = n
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning("%s: dead letter #%d (%s): %s", source, n, reason, detail)

    def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._dead_counts)


def _reason_key(text: str) -> str:
    """A spool/store rejection text ("spool full") as a metric label key ("spool_full")."""
    key = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
    return key[:40] or "rejected"


# --- factories (the defaults are the real parts; tests inject their own) -------------------

SourceFactory = Callable[[Any, AgentConfig, Callable[[], int]], Source]


def default_source_factory(cfg: Any, agent: AgentConfig, clock: Callable[[], int]) -> Source:
    """The source object for one ``[[source]]`` config object."""
    if isinstance(cfg, OpcUaConfig):
        from edge_agent.sources.opcua import OpcUaSource

        return OpcUaSource(cfg, state_dir=agent.state_dir, clock=clock)
    kind = type(cfg).__name__
    if kind == "MqttJsonSourceConfig":
        from edge_agent.sources.mqtt_json import MqttJsonSource

        return MqttJsonSource(cfg, clock=clock)
    if kind.startswith("Sparkplug"):
        from edge_agent.sources import sparkplug

        return sparkplug.SparkplugSource(cfg, clock=clock)
    raise TypeError(f"no source for config of type {kind}")


def default_spool_factory(agent: AgentConfig) -> Any:
    from ingest.spool import Spool

    return Spool(agent.spool.path, max_bytes=agent.spool.max_bytes, policy=agent.spool.policy)


def default_store_factory(url: str) -> Any:
    from ingest.stores import open_store

    return open_store(url)


def default_forwarder_factory(spool: Any, store: Any) -> Any:
    from ingest.writer import Forwarder

    return Forwarder(spool, store, name="agent-forwarder")


class Agent:
    """One edge agent (see module docstring). Not reusable: start once, stop once."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        source_factory: SourceFactory = default_source_factory,
        spool_factory: Callable[[AgentConfig], Any] = default_spool_factory,
        store_factory: Callable[[str], Any] = default_store_factory,
        forwarder_factory: Callable[[Any, Any], Any] | None = default_forwarder_factory,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], int] = now_ns,
        health_listen: str | None = None,
        max_spool_age_s: float = 300.0,
        source_restart_s: float = 5.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        self.metrics = AgentMetrics(self.registry)
        self.guard = Guard(config.guard)
        self.sources: list[Source] = [source_factory(s, config, clock) for s in config.sources]
        self._spool_factory = spool_factory
        self._store_factory = store_factory
        self._forwarder_factory = forwarder_factory
        self._health_listen = config.health_listen if health_listen is None else health_listen
        self.max_spool_age_s = max_spool_age_s
        self.source_restart_s = source_restart_s
        self.spool: Any = None
        self.store: Any = None
        self.forwarder: Any = None
        self.output: AgentOutput | None = None
        self.health: HealthServer | None = None
        self.registry.register(
            StateCollector(self.source_status, self.spool_status, self.forwarder_status)
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self.source_failures: dict[str, int] = {}

    # --- status ----------------------------------------------------------------------------

    def source_status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for s in self.sources:
            try:
                out[s.name] = dict(s.status())
            except Exception as exc:
                out[s.name] = {"connected": False, "error": repr(exc)}
        return out

    def spool_status(self) -> dict[str, Any]:
        if self.spool is None:
            return {}
        stats = dict(self.spool.stats())
        age = self.spool.oldest_age_ns(self.clock())
        stats["depth"] = self.spool.depth()
        stats["oldest_age_s"] = None if age is None else age / NS
        return stats

    def forwarder_status(self) -> dict[str, Any]:
        if self.forwarder is None or not hasattr(self.forwarder, "stats"):
            return {}
        return dict(self.forwarder.stats())

    def health_report(self) -> tuple[bool, dict[str, Any]]:
        ok, doc = health_report(self.source_status(), self.spool_status(), self.max_spool_age_s)
        doc["agent"] = self.config.name
        doc["forwarder"] = self.forwarder_status()
        return ok, doc

    @property
    def health_port(self) -> int | None:
        return self.health.port if self.health else None

    # --- lifecycle -------------------------------------------------------------------------

    def _open(self) -> None:
        """Spool, store, forwarder, health - in that order (the spool first: from then on
        nothing accepted can be lost, even if the store is down)."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.spool = self._spool_factory(self.config)
        self.output = AgentOutput(self.spool, self.guard, self.metrics, clock=self.clock)
        if self._forwarder_factory is not None:
            self.store = self._store_factory(self.config.store_url)
            self.forwarder = self._forwarder_factory(self.spool, self.store)
            self.forwarder.start()
        if self._health_listen:
            self.health = HealthServer(self._health_listen, self.registry, self.health_report)
            self.health.start()
            log.info(
                "health on http://%s:%d/healthz",
                self._health_listen.split(":")[0],
                self.health.port,
            )

    def _close(self, drain_timeout_s: float) -> None:
        if self.health is not None:
            self.health.stop()
        if self.forwarder is not None:
            try:
                self.forwarder.stop(drain=True, timeout_s=drain_timeout_s)
            except Exception:
                log.exception("forwarder stop failed (undelivered readings stay in the spool)")
        for part in (self.store, self.spool):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()

    async def _supervise(self, source: Source) -> None:
        """Run one source for ever; if it raises (a bug or config it cannot use), log, count
        and restart it after a backoff - one broken source never stops the others."""
        assert self.output is not None
        failures = 0
        while True:
            try:
                await source.run(self.output)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self.source_failures[source.name] = failures
                delay = min(60.0, self.source_restart_s * 2 ** min(failures - 1, 6))
                delay *= random.uniform(0.75, 1.0)
                log.exception("source %s failed; restarting in %.1f s", source.name, delay)
                await asyncio.sleep(delay)

    async def run_async(
        self, stop: asyncio.Event | None = None, *, drain_timeout_s: float = 10.0
    ) -> None:
        """Run until ``stop`` is set (or the task is cancelled), then shut down cleanly."""
        self._stop = stop or asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._open)
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            await asyncio.to_thread(self._close, 0.0)
            raise
        tasks = [
            asyncio.create_task(self._supervise(s), name=f"source:{s.name}") for s in self.sources
        ]
        log.info(
            "agent %s running: %d sources, spool %s, store %s",
            self.config.name,
            len(tasks),
            self.config.spool.path,
            _redact(self.config.store_url),
        )
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self._close, drain_timeout_s)
            log.info("agent %s stopped", self.config.name)

    def run(self) -> None:
        """Run in this thread until SIGINT or SIGTERM (the CLI's ``agent run``)."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await self.run_async(stop)

        asyncio.run(main())

    def start(self, timeout_s: float = 30.0) -> None:
        """Run on a background thread; returns once the sources are running (raises what
        opening the spool/store raised)."""
        if self._thread is not None:
            raise RuntimeError("agent already started")
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._thread_main()), name="kilnworks-agent", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise TimeoutError(f"agent did not start within {timeout_s} s")
        if self._start_error is not None:
            raise self._start_error

    async def _thread_main(self) -> None:
        try:
            await self.run_async()
        except BaseException as exc:  # the thread's last word: start() re-raises open errors
            if self._started.is_set() and self._start_error is None:
                log.exception("agent %s stopped by an error: %s", self.config.name, exc)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop a ``start()``-ed agent: sources first, then drain the forwarder."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)


def _redact(url: str) -> str:
    """A store URL without its password or token, for logs."""
    import re

    url = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)
    return re.sub(r"(token=)[^&]+", r"\1***", url)


def build_agent(config: AgentConfig, **kwargs: Any) -> Agent:
    """``Agent(config, **kwargs)``, for callers that prefer a function (api/demo.py)."""
    return Agent(config, **kwargs)


__all__: Sequence[str] = ("Agent", "AgentOutput", "build_agent", "default_source_factory")

_ = Output  # the protocol AgentOutput implements (kept imported for readers and type checkers)
