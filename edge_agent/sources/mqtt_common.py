"""What both MQTT sources share: connection settings and a session that acks only durable data.

:class:`MqttSettings` is parsed from the connection keys of a ``[[source]]`` table
(:func:`parse_mqtt_settings`, keys in :data:`CONNECTION_KEYS`). :class:`MqttSession` owns one
paho-mqtt client (v2 callback API) and one worker thread:

* paho's network thread only queues each PUBLISH (an :class:`InboundMessage`);
* the worker drains up to ``max_batch_messages`` queued messages, turns each into readings with
  the source's ``convert`` function, hands them all to ``Output.accept`` in one call (one fsync
  for many messages: a group commit), and only then sends the PUBACKs, in arrival order.

Why this shape:

* **Nothing is lost**: the client connects with a fixed client id, clean start off and a
  session expiry (MQTT 5) / clean session off (3.1.1), subscribes at QoS 1 and acks manually.
  A message whose readings are not durable is never acked, so the broker keeps it and sends
  it again after a reconnect or an agent restart.
* **Order**: one worker handles messages in arrival order and acks them in that order (MQTT
  requires PUBACKs in order for QoS 1). Sparkplug seq checking relies on this.
* **Bounded**: at most ``max_inflight`` messages are unacked. MQTT 5 tells the broker with
  Receive Maximum; for 3.1.1 the bounded queue blocks paho's thread, which stops reading the
  socket (TCP back-pressure).
* **Duplicates instead of loss**: a batch that became durable but whose PUBACKs could not be
  sent (connection dropped in between) is delivered again by the broker. The readings are the
  same points (same asset, field, source time), so InfluxDB overwrites them: idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.config import Table
from core.reading import Reading, now_ns
from edge_agent.source import Output

log = logging.getLogger(__name__)

#: Keys of a ``[[source]]`` table that :func:`parse_mqtt_settings` reads; a source parser
#: passes them to ``Table.check_keys`` together with its own.
CONNECTION_KEYS = (
    "url",
    "protocol",
    "client_id",
    "qos",
    "clean_start",
    "session_expiry_s",
    "keepalive_s",
    "username",
    "password",
    "password_env",
    "tls",
    "reconnect_min_s",
    "reconnect_max_s",
    "max_inflight",
    "max_batch_messages",
    "batch_linger_ms",
)

PROTOCOLS = ("5", "3.1.1")
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS for ``mqtts://``: ``ca_file`` to trust (system store when empty), an optional client
    certificate, and ``insecure`` to skip the host name check (the chain is still verified)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker. Defaults are the safe ones: QoS 1, persistent session."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"
    tls: TlsSettings | None = None
    qos: int = 1
    clean_start: bool = False
    # One week: long enough to survive a weekend shutdown of the agent without the broker
    # dropping the session (and the messages queued in it).
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    username: str = ""
    password: str = ""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_inflight: int = 1000
    max_batch_messages: int = 500
    batch_linger_ms: float = 5.0

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_settings(table: Table, default_client_id: str) -> MqttSettings:
    """Read the connection keys of ``table`` (see :data:`CONNECTION_KEYS`).

    ``url`` is ``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; ``[source.tls]`` holds
    ``ca_file``, ``cert_file``, ``key_file``, ``insecure``. The password comes from
    ``password`` or, better, the environment variable named by ``password_env`` (read now, so
    a missing variable fails at load). Raises :class:`core.config.ConfigError`.
    """
    url = table.str("url")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise table.error("url", f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise table.error("url", f"expected a port number in {url!r}") from None
    tls = None
    if "tls" in table or parts.scheme == "mqtts":
        t = table.table("tls", None) or Table({}, table.file, table.key("tls"))
        t.check_keys("ca_file", "cert_file", "key_file", "insecure")
        tls = TlsSettings(
            ca_file=_existing_file(t, "ca_file"),
            cert_file=_existing_file(t, "cert_file"),
            key_file=_existing_file(t, "key_file"),
            insecure=t.bool("insecure", False),
        )
        if bool(tls.cert_file) != bool(tls.key_file):
            raise t.error("key_file", "cert_file and key_file go together (client certificate)")
        if parts.scheme != "mqtts":
            raise table.error("url", "a [tls] table needs an mqtts:// url")
    password = table.str("password", "")
    if "password_env" in table:
        if "password" in table:
            raise table.error("password_env", "give password or password_env, not both")
        env = table.str("password_env")
        if env not in os.environ:
            raise table.error("password_env", f"environment variable {env} is not set")
        password = os.environ[env]
    username = table.str("username", "")
    if password and not username:
        raise table.error("username", "a password needs a username")
    protocol = table.str("protocol", "5", choices=PROTOCOLS)
    clean_start = table.bool("clean_start", False)
    return MqttSettings(
        host=parts.hostname,
        port=port,
        client_id=table.str("client_id", default_client_id),
        protocol=protocol,
        tls=tls,
        qos=table.int("qos", 1, min=0, max=1),
        clean_start=clean_start,
        session_expiry_s=table.int("session_expiry_s", 7 * 24 * 3600, min=0, max=2**32 - 1),
        keepalive_s=table.int("keepalive_s", 30, min=5, max=3600),
        username=username,
        password=password,
        reconnect_min_s=table.float("reconnect_min_s", 0.5, min=0.05, max=60.0),
        reconnect_max_s=table.float("reconnect_max_s", 30.0, min=0.1, max=3600.0),
        max_inflight=table.int("max_inflight", 1000, min=1, max=65535),
        max_batch_messages=table.int("max_batch_messages", 500, min=1, max=100_000),
        batch_linger_ms=table.float("batch_linger_ms", 5.0, min=0.0, max=1000.0),
    )


def _existing_file(table: Table, name: str) -> str:
    path = table.str(name, "")
    if path and not os.path.isfile(path):
        raise table.error(name, f"expected a readable file, {path!r} does not exist")
    return path


def _worth_logging(attempt: int) -> bool:
    """Log the 1st, 10th and every 100th failed attempt: a broker down for a day (or a wrong
    password) must not flood the log, and the counters carry the exact number."""
    return attempt in (1, 10) or attempt % 100 == 0


class InboundMessage(NamedTuple):
    """A PUBLISH as the worker sees it. ``generation`` counts connections: a PUBACK is only
    sent on the connection the message arrived on (the broker re-sends the others)."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    dup: bool
    retain: bool
    received_ns: int
    generation: int


class Will(NamedTuple):
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


ClientFactory = Callable[[MqttSettings], mqtt.Client]
#: Turns one message into readings; reports bad parts itself through ``Output.reject``.
Convert = Callable[[InboundMessage, Output], list[Reading]]


def make_client(settings: MqttSettings) -> mqtt.Client:
    """The default client factory: paho v2 callback API, manual acks, persistent session."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # 3.1.1 takes the session flag here; MQTT 5 takes clean_start at connect().
        clean_session=None if v5 else settings.clean_start,
        manual_ack=True,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls is not None:
        client.tls_set_context(tls_context(settings.tls))
        client.tls_insecure_set(settings.tls.insecure)
    return client


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure:
        context.check_hostname = False
    return context


class MqttSession:
    """One broker connection that feeds a source's ``convert`` and acks after ``accept``.

    Who calls it: an MQTT source's ``run`` (``await session.run(output)``). ``run`` returns
    only by cancellation; connection loss is handled inside (paho reconnects with exponential
    backoff between ``reconnect_min_s`` and ``reconnect_max_s``). Thread-safe: ``publish`` and
    ``status`` may be called from any thread.
    """

    def __init__(
        self,
        name: str,
        settings: MqttSettings,
        topics: Sequence[str],
        convert: Convert,
        *,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], int] = now_ns,
        will: Will | None = None,
        on_connected: Callable[[MqttSession], None] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.topics = list(topics)
        self.convert = convert
        self.client_factory = client_factory
        self.clock = clock
        self.will = will
        self.on_connected = on_connected
        self._queue: queue.Queue[InboundMessage] = queue.Queue(maxsize=settings.max_inflight)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._generation = 0
        self.connected = threading.Event()
        #: Set once the broker acknowledged our subscriptions on the current connection.
        self.subscribed = threading.Event()
        self._subscribe_mid = -1
        self._refused = False
        self._failure: BaseException | None = None
        self._on_worker_death: Callable[[], object] | None = None
        self.counters: Counter[str] = Counter()
        self.last_message_ns = 0
        self.last_error = ""
        self.session_present = False

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, output: Output) -> None:
        """Connect, collect until cancelled, then disconnect (unacked messages stay queued at
        the broker for the next session)."""
        loop = asyncio.get_running_loop()
        died = asyncio.Event()
        self._on_worker_death = lambda: loop.call_soon_threadsafe(died.set)
        self.start(output)
        try:
            await died.wait()
            # The worker cannot go on (the Output failed while dead-lettering): leave without
            # acking; the agent restarts the source and the broker re-sends what was unacked.
            raise RuntimeError(f"mqtt source {self.name}: worker stopped") from self._failure
        finally:
            self._on_worker_death = None
            await asyncio.to_thread(self.stop)

    def start(self, output: Output) -> None:
        self._stop.clear()
        self._failure = None
        # Messages left from an earlier run were never acked: the broker re-sends them.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        client = self.client_factory(self.settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = self._on_connect_fail
        client.reconnect_delay_set(self.settings.reconnect_min_s, self.settings.reconnect_max_s)  # type: ignore[arg-type]
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, self.will.qos, self.will.retain)
        properties = None
        kwargs: dict[str, Any] = {}
        if self.settings.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            # Receive Maximum = how many QoS 1 messages the broker may have unacked with us.
            properties.ReceiveMaximum = self.settings.max_inflight
            kwargs["clean_start"] = self.settings.clean_start
            kwargs["properties"] = properties
        client.connect_async(
            self.settings.host, self.settings.port, self.settings.keepalive_s, **kwargs
        )
        self._client = client
        self._worker = threading.Thread(
            target=self._work, args=(output,), name=f"mqtt-{self.name}", daemon=True
        )
        self._worker.start()
        client.loop_start()

    def stop(self) -> None:
        """Finish the batch in hand (accept + ack), then disconnect. Idempotent."""
        self._stop.set()
        if self._worker is not None:
            # The worker finishes its batch; an Output that hangs must not hang shutdown.
            self._worker.join(STOP_TIMEOUT_S)
            if self._worker.is_alive():
                log.error("mqtt source %s: worker still busy after %.0f s; leaving it",
                          self.name, STOP_TIMEOUT_S)  # fmt: skip
            self._worker = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
        self.connected.clear()
        self.subscribed.clear()

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> bool:
        """Publish (e.g. a Sparkplug NCMD); False when not connected (the caller may retry)."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        info = client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def status(self) -> dict[str, object]:
        return {
            "url": self.settings.url,
            "client_id": self.settings.client_id,
            "protocol": self.settings.protocol,
            "connected": self.connected.is_set(),
            "subscribed": self.subscribed.is_set(),
            "session_present": self.session_present,
            "connects": self.counters["connects"],
            "reconnects": max(0, self.counters["connects"] - 1),
            "messages_received": self.counters["received"],
            "messages_acked": self.counters["acked"],
            "messages_queued": self._queue.qsize(),
            "readings": self.counters["readings"],
            "connect_failures": self.counters["connect_failures"],
            "accept_failures": self.counters["accept_failures"],
            "last_message_ns": self.last_message_ns,
            "last_error": self.last_error,
        }

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._refused = True
            self.counters["connect_failures"] += 1
            self.last_error = f"connect refused: {rc}"
            if _worth_logging(self.counters["connect_failures"]):
                log.warning(
                    "mqtt source %s: %s refused the connection: %s (attempt %d)",
                    self.name, self.settings.url, rc, self.counters["connect_failures"],
                )  # fmt: skip
            return
        with self._lock:
            self._generation += 1
        self.counters["connects"] += 1
        self.session_present = bool(getattr(flags, "session_present", False))
        if self.counters["connects"] > 1 and not self.session_present:
            # The broker lost or expired our session: what it queued for us meanwhile is gone.
            log.warning(
                "mqtt source %s: broker %s has no session for %s; messages published while "
                "we were away may be lost (session expiry %d s)",
                self.name, self.settings.url, self.settings.client_id,
                self.settings.session_expiry_s,
            )  # fmt: skip
        # Subscribing again is harmless with a resumed session and required without one.
        self.subscribed.clear()
        _rc, self._subscribe_mid = client.subscribe([(t, self.settings.qos) for t in self.topics])
        self.connected.set()
        log.info(
            "mqtt source %s: connected to %s (session present: %s)",
            self.name,
            self.settings.url,
            self.session_present,
        )
        if self.on_connected is not None:
            try:
                self.on_connected(self)
            except Exception:
                log.exception("mqtt source %s: on_connected hook failed", self.name)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [f"{t}: {c}" for t, c in zip(self.topics, codes, strict=False) if c.is_failure]
        if refused:
            # An ACL that denies a topic: say so loudly, the source will never see that data.
            self.last_error = f"subscription refused: {', '.join(refused)}"
            log.error("mqtt source %s: %s", self.name, self.last_error)
        self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if self._stop.is_set():
            return
        if was:
            self.last_error = f"disconnected: {rc}"
            log.warning(
                "mqtt source %s: lost %s (%s); reconnecting", self.name, self.settings.url, rc
            )
        elif self._refused:
            self._refused = False  # the CONNACK said why; on_connect recorded it
        else:
            # Closed before CONNACK: e.g. a TLS client certificate the broker refused (TLS 1.3
            # reports it only after the handshake looked complete to us).
            self.counters["connect_failures"] += 1
            self.last_error = f"connection closed before CONNACK: {rc}"
            if _worth_logging(self.counters["connect_failures"]):
                log.warning("mqtt source %s: %s: %s", self.name, self.settings.url, self.last_error)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self.counters["connect_failures"] += 1
        self.last_error = f"cannot connect to {self.settings.url}"
        n = self.counters["connect_failures"]
        if _worth_logging(n):
            log.warning("mqtt source %s: %s (attempt %d)", self.name, self.last_error, n)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")  # the worker rejects it
        inbound = InboundMessage(
            topic, message.payload, message.qos, message.mid, bool(message.dup),
            bool(message.retain), self.clock(), self._generation,
        )  # fmt: skip
        self.counters["received"] += 1
        # Blocking here is the back-pressure for 3.1.1 (no Receive Maximum): paho stops
        # reading the socket. Wake up now and then so a stop() is not held up forever.
        while not self._stop.is_set():
            try:
                self._queue.put(inbound, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- worker thread ----------------------------------------------------------------------

    def _work(self, output: Output) -> None:
        limit = self.settings.max_batch_messages
        linger_s = self.settings.batch_linger_ms / 1000.0
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            linger_until = time.monotonic() + linger_s
            while len(batch) < limit:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    # Wait a moment for more: fewer, larger groups mean fewer fsyncs and fewer
                    # thread switches against paho's network thread (the GIL is shared).
                    remaining = linger_until - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(self._queue.get(timeout=remaining))
                    except queue.Empty:
                        break
            try:
                self._handle(batch, output)
            except Exception as exc:
                log.exception(
                    "mqtt source %s: worker failed; nothing of this batch acked", self.name
                )
                self._failure = exc
                self.last_error = f"worker failed: {exc!r}"
                notify = self._on_worker_death
                if notify is not None:
                    notify()
                return

    def _handle(self, batch: list[InboundMessage], output: Output) -> None:
        readings: list[Reading] = []
        for message in batch:
            try:
                readings.extend(self.convert(message, output))
            except Exception as exc:  # a converter bug must not stop collection
                log.exception(
                    "mqtt source %s: cannot convert a message on %s", self.name, message.topic
                )
                output.reject(
                    self.name, "internal_error", f"{message.topic}: {exc!r}", message.payload
                )
        if readings and not self._accept(readings, output):
            return  # stopping with the batch not durable: no ack, the broker re-sends it
        self.counters["readings"] += len(readings)
        self.last_message_ns = batch[-1].received_ns
        client = self._client
        for message in batch:
            if message.qos == 0 or client is None:
                continue
            with self._lock:
                current = message.generation == self._generation and self.connected.is_set()
            if current:
                client.ack(message.mid, message.qos)
                self.counters["acked"] += 1
            else:
                self.counters["ack_skipped"] += 1

    def _accept(self, readings: list[Reading], output: Output) -> bool:
        """Hand readings to the output, retrying with backoff while it cannot take them (the
        broker keeps the unacked messages meanwhile). False if stopped before success."""
        delay = self.settings.reconnect_min_s
        while True:
            try:
                output.accept(self.name, readings)
                return True
            except Exception as exc:
                self.counters["accept_failures"] += 1
                self.last_error = f"output refused readings: {exc}"
                log.error(
                    "mqtt source %s: output cannot take %d readings (%s); retrying",
                    self.name,
                    len(readings),
                    exc,
                )
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, self.settings.reconnect_max_s)
