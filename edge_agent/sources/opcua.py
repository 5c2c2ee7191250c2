"""The OPC UA source: subscribe to kiln variables, hand every change to the spool, lose nothing.

One :class:`OpcUaSource` per ``[[opcua]]`` config section (one server). Its life:

1. connect (security policy/mode with a client certificate generated on first run,
   username/password), resolve node ids, read each node's EURange once;
2. create one subscription and a monitored item per node with the node's sampling interval,
   queue size and DataChangeFilter (trigger + absolute/percent deadband);
3. if the agent has a high-water mark for a node (the newest source time already durable,
   kept in ``state_dir`` so it survives a restart of the agent), HistoryRead everything after it
   and deliver that first - this fills the gap of a server restart, a network drop or an agent
   that was down. Live notifications wait in the subscription's queue meanwhile;
4. deliver notifications in batches: asyncua's publish loop only enqueues (never awaits us);
   one consumer task converts a batch and calls ``Output.accept`` through
   ``asyncio.to_thread`` so the event loop never waits on the disk. A node's mark advances
   only after ``accept`` returned, i.e. after the readings are durable;
5. on connection loss (asyncua's supervisor reports it), deliver what already arrived, drop
   the session and reconnect with exponential backoff plus jitter, re-creating the session
   *and* the subscription (then step 3 fills the gap).

Values at or before a node's mark are duplicates (history overlapping live data) and are
dropped here, so the spool sees each source sample once. Values outside the EURange and
variants the platform cannot store are rejected to the dead-letter table with a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent

from core.reading import Reading, now_ns
from edge_agent.config import NodeMapping, OpcUaConfig
from edge_agent.source import Output
from edge_agent.sources.opcua_state import Watermarks
from edge_agent.sources.opcua_values import (
    UnsupportedValue,
    ns_to_datetime,
    source_time_or_none,
    to_reading,
)

log = logging.getLogger(__name__)

_TRIGGERS = {
    "status": ua.DataChangeTrigger.Status,
    "status_value": ua.DataChangeTrigger.StatusValue,
    "status_value_timestamp": ua.DataChangeTrigger.StatusValueTimestamp,
}
_DEADBANDS = {
    "none": ua.DeadbandType.None_,
    "absolute": ua.DeadbandType.Absolute,
    "percent": ua.DeadbandType.Percent,
}
# CreateMonitoredItems in chunks: servers cap items per call (OperationLimits).
_MONITOR_CHUNK = 500
# HistoryRead "to the end": a fixed far end rather than an open one, because Part 11 allows an
# open end only with NumValuesPerNode > 0 and some servers reject it.
_HISTORY_END = datetime(2200, 1, 1, tzinfo=UTC)

# Source times remembered per node for de-duplication; the overlap of a history read with the
# live notifications queued meanwhile is at most a publishing interval or two of samples.
RECENT = 4096

ClientFactory = Callable[..., Client]


@dataclass(slots=True)
class _Item:
    mapping: NodeMapping
    node_id: ua.NodeId | None = None
    eu_range: tuple[float, float] | None = None
    eu_range_read: bool = False
    history: bool = True  # False once the server said it keeps none for this node
    handle: int = 0
    last_value: object = None  # for Bad notifications that carry no value
    recent: set[int] = field(default_factory=set)  # source times delivered lately
    recent_order: deque[int] = field(default_factory=deque)

    def remember(self, time_ns: int) -> None:
        """Keep the last RECENT source times: enough to cover a history/live overlap."""
        if time_ns in self.recent:
            return
        self.recent.add(time_ns)
        self.recent_order.append(time_ns)
        if len(self.recent_order) > RECENT:
            self.recent.discard(self.recent_order.popleft())


class SessionLost(ConnectionError):
    """The connection to the server went away (the session loop ends; run() reconnects)."""


class OpcUaSource:
    """Collects the mapped nodes of one OPC UA server. Implements :class:`edge_agent.source.Source`.

    ``client_factory`` (default :class:`asyncua.Client`) and ``clock`` (integer ns) are injected
    for tests; ``state_dir`` holds the client certificate and the per-node marks.
    """

    def __init__(
        self,
        config: OpcUaConfig,
        *,
        state_dir: Path | None = None,
        clock: Callable[[], int] = now_ns,
        client_factory: ClientFactory = Client,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.state_dir = state_dir
        self.clock = clock
        self.client_factory = client_factory
        self.rng = rng or random.Random()
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", config.name)
        self.watermarks = Watermarks(state_dir / f"opcua-{safe}.marks.json" if state_dir else None)
        self.items = [_Item(m) for m in config.nodes]
        self._by_handle: dict[int, _Item] = {}
        # status counters (read by health via status())
        self.connected = False
        self.sessions = 0
        self.reconnects = 0
        self.notifications = 0
        self.delivered = 0
        self.history_readings = 0
        self.duplicates_dropped = 0
        self.rejected = 0
        self.monitored = 0
        self.last_message_ns: int | None = None
        self.last_error = ""
        self.connected_event = asyncio.Event()  # set while a session is up (tests await it)

    # --- Source protocol -------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "kind": "opcua",
            "endpoint": self.config.endpoint,
            "connected": self.connected,
            "sessions": self.sessions,
            "reconnects": self.reconnects,
            "nodes": len(self.items),
            "monitored": self.monitored,
            "notifications": self.notifications,
            "delivered": self.delivered,
            "history_readings": self.history_readings,
            "duplicates_dropped": self.duplicates_dropped,
            "rejected": self.rejected,
            "last_message_ns": self.last_message_ns,
            "last_error": self.last_error,
        }

    async def run(self, output: Output) -> None:
        """Collect until cancelled, reconnecting with backoff (see module docstring)."""
        attempt = 0
        try:
            while True:
                started = asyncio.get_running_loop().time()
                try:
                    await self._session(output)
                except asyncio.CancelledError:
                    raise
                except (OSError, ConnectionError, TimeoutError, ua.UaError) as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("%s: %s: %s", self.name, self.config.endpoint, self.last_error)
                finally:
                    self._set_connected(False)
                    self.watermarks.maybe_save(force=True)
                if asyncio.get_running_loop().time() - started > 10 * self.config.reconnect_max_s:
                    attempt = 0  # a long healthy session: start the backoff over
                delay = self._backoff(attempt)
                attempt += 1
                log.info("%s: reconnecting in %.2f s (attempt %d)", self.name, delay, attempt)
                await asyncio.sleep(delay)
        finally:
            self.watermarks.maybe_save(force=True)

    # --- connection ------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so a fleet of
        agents does not reconnect to a restarted server in lockstep."""
        cap = min(
            self.config.reconnect_max_s, self.config.reconnect_min_s * (2 ** min(attempt, 20))
        )
        return cap / 2 + self.rng.uniform(0, cap / 2)

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if up:
            self.connected_event.set()
        else:
            self.connected_event.clear()

    async def _certificates(self) -> tuple[Path, Path]:
        """The client certificate and key: configured paths, or generated on first run into
        ``state_dir/pki`` (self-signed, the application URI in subjectAltName as Part 6
        requires; the server operator trusts it once)."""
        cfg = self.config
        if cfg.certificate and cfg.private_key and cfg.certificate.exists():
            return cfg.certificate, cfg.private_key
        from asyncua.crypto.cert_gen import setup_self_signed_certificate
        from cryptography.x509.oid import ExtendedKeyUsageOID

        pki = cfg.certificate.parent if cfg.certificate else (self.state_dir or Path(".")) / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        cert = cfg.certificate or pki / "agent-cert.der"
        key = cfg.private_key or pki / "agent-key.pem"
        await setup_self_signed_certificate(
            key,
            cert,
            cfg.application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {
                "countryName": "CN",
                "organizationName": "kilnworks",
                "commonName": "kilnworks edge agent",
            },
        )
        return cert, key

    async def _connect(self) -> Client:
        cfg = self.config
        client = self.client_factory(
            cfg.endpoint, timeout=cfg.request_timeout_s, watchdog_intervall=cfg.watchdog_s
        )
        client.application_uri = cfg.application_uri
        client.name = client.description = f"kilnworks edge agent ({cfg.name})"
        if cfg.username:
            client.set_user(cfg.username)
            client.set_password(cfg.password)
        if cfg.security_policy != "None":
            from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

            cert, key = await self._certificates()
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=str(cert),
                private_key=str(key),
                server_certificate=str(cfg.server_certificate) if cfg.server_certificate else None,
                mode=getattr(ua.MessageSecurityMode, cfg.security_mode),
            )
        await asyncio.wait_for(client.connect(), timeout=max(5.0, 3 * cfg.request_timeout_s))
        return client

    async def _resolve(self, client: Client) -> None:
        """Node ids from text (``nsu=`` resolved against the server's namespace array) and each
        node's EURange, read once per source lifetime (it is configuration, not data)."""
        ns_cache: dict[str, int] = {}
        for item in self.items:
            nid = ua.NodeId.from_string(item.mapping.node_id)
            uri = getattr(nid, "NamespaceUri", None)
            if uri:
                if uri not in ns_cache:
                    ns_cache[uri] = await client.get_namespace_index(uri)
                nid = ua.NodeId(nid.Identifier, ns_cache[uri], nid.NodeIdType)
            item.node_id = nid
            if item.mapping.eu_range is not None:
                item.eu_range = item.mapping.eu_range
                item.eu_range_read = True
        if not self.config.read_eu_range:
            return
        todo = [i for i in self.items if not i.eu_range_read]
        results = await asyncio.gather(*(self._read_eu_range(client, i) for i in todo))
        for item, rng in zip(todo, results, strict=True):
            item.eu_range = rng
            item.eu_range_read = True

    @staticmethod
    async def _read_eu_range(client: Client, item: _Item) -> tuple[float, float] | None:
        try:
            prop = await client.get_node(item.node_id).get_child("0:EURange")
            rng = await prop.read_value()
        except ua.UaError:
            return None  # not an AnalogItem: no range to check
        low, high = float(rng.Low), float(rng.High)
        return (low, high) if low < high else None

    async def _monitor(self, sub: Any) -> None:
        """One monitored item per node, with explicit sampling interval, queue size and filter."""
        requests = []
        self._by_handle = {}
        for handle, item in enumerate(self.items, start=1):
            m = item.mapping
            mparams = ua.MonitoringParameters()
            mparams.ClientHandle = handle
            mparams.SamplingInterval = m.sampling_interval_ms
            mparams.QueueSize = m.queue_size
            mparams.DiscardOldest = True
            mparams.Filter = ua.DataChangeFilter(
                Trigger=_TRIGGERS[m.trigger],
                DeadbandType=_DEADBANDS[m.deadband_type],
                DeadbandValue=m.deadband_value,
            )
            rv = ua.ReadValueId()
            rv.NodeId = item.node_id
            rv.AttributeId = ua.AttributeIds.Value
            req = ua.MonitoredItemCreateRequest()
            req.ItemToMonitor = rv
            req.MonitoringMode = ua.MonitoringMode.Reporting
            req.RequestedParameters = mparams
            requests.append(req)
            item.handle = handle
            self._by_handle[handle] = item
        self.monitored = 0
        for start in range(0, len(requests), _MONITOR_CHUNK):
            chunk = requests[start : start + _MONITOR_CHUNK]
            results = await sub.create_monitored_items(chunk)
            for req, res in zip(chunk, results, strict=True):
                if isinstance(res, ua.StatusCode):
                    item = self._by_handle[req.RequestedParameters.ClientHandle]
                    log.error(
                        "%s: cannot monitor %s (%s %s): %s",
                        self.name,
                        item.mapping.node_id,
                        item.mapping.asset,
                        item.mapping.field,
                        res,
                    )
                    self.last_error = f"cannot monitor {item.mapping.node_id}: {res}"
                else:
                    self.monitored += 1

    # --- one session -----------------------------------------------------------------------

    async def _session(self, output: Output) -> None:
        cfg = self.config
        client = await self._connect()
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self.last_error = f"connection lost: {exc!r}"
            lost.set()

        client.connection_lost_callback = on_lost
        consumer: asyncio.Task[None] | None = None
        queue: asyncio.Queue[Any] | None = None
        gate = asyncio.Event()
        drain = True
        try:
            await self._resolve(client)
            params = ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=cfg.publishing_interval_ms,
                RequestedLifetimeCount=10_000,
                RequestedMaxKeepAliveCount=max(3, int(10_000 / cfg.publishing_interval_ms)),
                MaxNotificationsPerPublish=0,  # 0 = no limit; the server sends what it has
                PublishingEnabled=True,
                Priority=0,
            )
            # Iterator mode with an unbounded queue: the publish loop only enqueues, so a slow
            # disk delays delivery but never makes asyncua drop a notification.
            sub = await client.create_subscription(params, handler=None, queue_maxsize=0)
            queue = sub._event_queue  # asyncua's queue; read in batches below
            await self._monitor(sub)
            consumer = asyncio.create_task(self._consume(queue, output, gate))
            self.sessions += 1
            if self.sessions > 1:
                self.reconnects += 1
            self._set_connected(True)
            self.last_error = ""
            log.info(
                "%s: connected to %s, %d/%d nodes monitored",
                self.name,
                cfg.endpoint,
                self.monitored,
                len(self.items),
            )
            if cfg.history_fill:
                try:
                    await self._fill_history(client, output)
                except BaseException:
                    # The gap is not filled: live values queued meanwhile must not advance the
                    # marks past it. Drop them; the next session's HistoryRead returns them.
                    drain = False
                    raise
            gate.set()
            waiter = asyncio.create_task(lost.wait())
            try:
                await asyncio.wait({consumer, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if consumer.done():
                consumer.result()  # re-raise what stopped it
                raise SessionLost("subscription closed")
            raise SessionLost(self.last_error or "connection lost")
        finally:
            self._set_connected(False)
            if consumer is not None and queue is not None:
                await self._stop_consumer(consumer, queue, gate, drain)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.disconnect(), timeout=2.0)

    async def _stop_consumer(
        self,
        consumer: asyncio.Task[None],
        queue: asyncio.Queue[Any],
        gate: asyncio.Event,
        drain: bool,
    ) -> None:
        """End the consumer; when ``drain``, first deliver what already arrived (those
        notifications were received, so delivering them loses nothing and saves a re-read)."""
        if drain and not consumer.done():
            gate.set()
            queue.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(consumer), timeout=10.0)
        if not consumer.done():
            consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer

    async def _consume(
        self, queue: asyncio.Queue[Any], output: Output, gate: asyncio.Event
    ) -> None:
        """Take notifications off asyncua's queue in batches and deliver them, in order."""
        limit = self.config.max_batch
        linger = self.config.batch_linger_ms / 1000.0
        while True:
            first = await queue.get()
            if first is None:
                return
            if linger > 0 and queue.qsize() < limit:
                # Let a few publish responses gather: one spool transaction (one fsync, one
                # encode) per few hundred readings instead of per response costs the agent a
                # fraction of the CPU, for a delay far below the forwarder's flush interval.
                await asyncio.sleep(linger)
            events = [first]
            stop = False
            while len(events) < limit and not queue.empty():
                ev = queue.get_nowait()
                if ev is None:
                    stop = True
                    break
                events.append(ev)
            await gate.wait()
            values: list[tuple[_Item, ua.DataValue]] = []
            for ev in events:
                if isinstance(ev, DataChangeEvent):
                    item = self._by_handle.get(ev.data.subscription_data.client_handle)
                    if item is not None:
                        values.append((item, ev.data.monitored_item.Value))
                elif isinstance(ev, StatusChangeEvent):
                    log.warning("%s: subscription status %s", self.name, ev.notification.Status)
            self.notifications += len(values)
            if values:
                await self._deliver(values, output)
            if stop:
                return

    # --- delivery --------------------------------------------------------------------------

    async def _deliver(
        self, values: list[tuple[_Item, ua.DataValue]], output: Output, *, history: bool = False
    ) -> None:
        """Convert, de-duplicate against the marks, hand over (off the loop), then advance the
        marks. If ``accept`` raises, the marks stay put and the exception ends the session."""
        received = self.clock()
        readings: list[Reading] = []
        rejects: list[tuple[str, str, str]] = []
        delivered: list[tuple[_Item, int]] = []
        batch_seen: set[tuple[int, int]] = set()
        marks = self.watermarks
        for item, dv in values:
            st = source_time_or_none(dv)
            if st is not None:
                mark = marks.get(item.mapping.node_id)
                # A duplicate is the same sample twice: same node, same source time (history
                # overlapping live data, or the current value re-sent by a new subscription).
                # History additionally skips everything up to the mark (after an agent
                # restart the recent set is empty). A *live* value older than the mark is a
                # new sample from a corrected clock and is kept.
                if (
                    st in item.recent
                    or (item.handle, st) in batch_seen
                    or (history and mark is not None and st <= mark)
                ):
                    self.duplicates_dropped += 1
                    continue
                batch_seen.add((item.handle, st))
                delivered.append((item, st))
            self._convert(item, dv, received, readings, rejects)
        if readings or rejects:
            await asyncio.to_thread(self._hand_over, output, readings, rejects)
        # Only now, with the readings durable, do the marks and the recent sets move.
        for item, st in delivered:
            item.remember(st)
            marks.advance(item.mapping.node_id, st)
        marks.maybe_save()
        self.delivered += len(readings)
        self.rejected += len(rejects)
        if history:
            self.history_readings += len(readings)
        self.last_message_ns = received

    def _convert(
        self,
        item: _Item,
        dv: ua.DataValue,
        received: int,
        readings: list[Reading],
        rejects: list[tuple[str, str, str]],
    ) -> None:
        m = item.mapping
        where = f"{m.asset} {m.field} ({m.node_id})"
        if (dv.Value is None or dv.Value.Value is None) and item.last_value is not None:
            # Servers drop the value of a Bad sample (a broken thermocouple). Keep the moment
            # it failed: store the node's last value with the Bad quality, as OPC UA's "last
            # usable value" does; consumers ignore values whose quality is not GOOD.
            dv = ua.DataValue(
                ua.Variant(item.last_value),
                StatusCode=dv.StatusCode,
                SourceTimestamp=dv.SourceTimestamp,
                ServerTimestamp=dv.ServerTimestamp,
            )
        try:
            r = to_reading(
                dv,
                asset=m.asset,
                field=m.field,
                unit=m.unit,
                timestamp=self.config.timestamp,
                received_ns=received,
            )
        except UnsupportedValue as exc:
            rejects.append((exc.reason, f"{where}: {exc} (status {dv.StatusCode})", repr(dv)))
            return
        v = r.value
        rng = item.eu_range
        if (
            rng is not None
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and not (rng[0] <= v <= rng[1])
        ):
            rejects.append(
                (
                    "out_of_range",
                    f"{where} @ {r.source_time_ns}: {v!r} outside EURange [{rng[0]}, {rng[1]}]",
                    repr(v),
                )
            )
            return
        item.last_value = r.value
        readings.append(r)

    def _hand_over(
        self, output: Output, readings: list[Reading], rejects: list[tuple[str, str, str]]
    ) -> None:
        for reason, detail, raw in rejects:
            output.reject(self.name, reason, detail, raw)
        if readings:
            output.accept(self.name, readings)

    async def _fill_history(self, client: Client, output: Output) -> None:
        """HistoryRead each node after its mark and deliver in order (see module docstring)."""
        for item in self.items:
            key = item.mapping.node_id
            mark = self.watermarks.get(key)
            if mark is None or not item.history or item.node_id is None:
                continue
            node = client.get_node(item.node_id)
            try:
                dvs = await node.read_raw_history(
                    starttime=ns_to_datetime(mark), endtime=_HISTORY_END, return_bounds=False
                )
            except ua.UaStatusCodeError as exc:
                # Not historized / not supported: remember, fill nothing for this node.
                item.history = False
                log.info("%s: no history for %s: %s", self.name, key, exc)
                continue
            if dvs:
                log.info("%s: history fill %s: %d values after mark", self.name, key, len(dvs))
                chunk = self.config.max_batch
                for start in range(0, len(dvs), chunk):
                    await self._deliver(
                        [(item, dv) for dv in dvs[start : start + chunk]], output, history=True
                    )
