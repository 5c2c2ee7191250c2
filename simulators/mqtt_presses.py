"""The MQTT side of the forming shops: JSON presses and Sparkplug B edge nodes.

Each enterprise has (when its scenario has such presses) one MQTT connection for its JSON
presses and one Sparkplug B edge node ``<enterprise>-forming`` for its Sparkplug presses, like
two vendors' gateways in the same shop. paho-mqtt runs its network loop in a thread; everything
that decides *what* to publish runs on the fleet's asyncio loop (paho callbacks hop over with
``call_soon_threadsafe``), so Sparkplug ``seq`` numbers are assigned in one place, in order.

Delivery: QoS 1, not retained. While a link is down (broker gone, or ``drop()`` for a simulated
network failure) presses keep working and their messages are *not* sent (the truth file marks
them ``delivered: false``); nothing is queued for later, as with most press PLC gateways.

Sparkplug B (spec 3.0): NBIRTH seq 0 with ``bdSeq`` and ``Node Control/Rebirth``; a DBIRTH per
device with every metric's name, alias and datatype; DDATA with aliases only; seq 0..255
wrapping over every message but NDEATH; ``bdSeq`` increments on each new connection and the Will
(NDEATH) carries the same bdSeq as the NBIRTH of that connection; NCMD ``Node Control/Rebirth``
= true re-publishes NBIRTH + DBIRTHs; on a clean stop DDEATHs then an explicit NDEATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators import sparkplug as spb
from simulators.press_model import PressModel

log = logging.getLogger(__name__)

_client_seq = itertools.count(1)


@dataclass(frozen=True)
class MqttOptions:
    """How to reach the broker. ``url``: ``mqtt://host:port`` or ``mqtts://host:port`` (TLS)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    protocol: int = 5  # 5 or 311
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False  # skip hostname check (self-signed test brokers)
    keepalive_s: int = 30
    client_id_prefix: str = "kilnworks-sim"

    def __post_init__(self) -> None:
        u = urlparse(self.url)
        if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not u.hostname:
            raise ValueError(f"MQTT url must look like mqtt://host:port, got {self.url!r}")
        if self.protocol not in (5, 311):
            raise ValueError(f"MQTT protocol must be 5 or 311, got {self.protocol!r}")

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        u = urlparse(self.url)
        return u.port or (8883 if self.tls else 1883)

    @property
    def tls(self) -> bool:
        return urlparse(self.url).scheme in ("mqtts", "ssl") or self.tls_ca is not None


class MqttLink:
    """One paho client: connect in the background, auto-reconnect, or ``drop()`` abruptly.

    ``on_connected`` / ``on_disconnected`` / ``on_message`` run on the asyncio ``loop``.
    ``before_connect(client)`` runs (paho thread or caller) before every (re)connect so a
    Sparkplug node can set its Will with a fresh bdSeq.
    """

    def __init__(
        self,
        name: str,
        options: MqttOptions,
        loop: asyncio.AbstractEventLoop,
        *,
        before_connect: Callable[[mqtt.Client], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        subscriptions: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.options = options
        self.loop = loop
        self.before_connect = before_connect
        self.on_connected = on_connected
        self.on_message = on_message
        self.subscriptions = subscriptions
        self.client: mqtt.Client | None = None
        self.connected = threading.Event()
        self._dropping = False
        self.connects = 0

    def _make_client(self) -> mqtt.Client:
        o = self.options
        client_id = f"{o.client_id_prefix}-{self.name}-{next(_client_seq)}"
        proto = mqtt.MQTTv5 if o.protocol == 5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {
            "callback_api_version": CallbackAPIVersion.VERSION2,
            "client_id": client_id,
            "protocol": proto,
        }
        if proto == mqtt.MQTTv311:
            kwargs["clean_session"] = True
        c = mqtt.Client(**kwargs)
        if o.username:
            c.username_pw_set(o.username, o.password)
        if o.tls:
            c.tls_set(
                ca_certs=o.tls_ca,
                certfile=o.tls_cert,
                keyfile=o.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            if o.tls_insecure:
                c.tls_insecure_set(True)
        c.reconnect_delay_set(min_delay=0.2, max_delay=2)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def start(self) -> None:
        self._dropping = False
        c = self._make_client()
        self.client = c
        if self.before_connect:
            self.before_connect(c)
        o = self.options
        if o.protocol == 5:
            c.connect_async(o.host, o.port, o.keepalive_s, clean_start=True)
        else:
            c.connect_async(o.host, o.port, o.keepalive_s)
        c.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if client is not self.client or self._dropping:
            return
        if reason_code.is_failure:
            log.warning("MQTT %s: connect refused: %s", self.name, reason_code)
            return
        self.connects += 1
        for t in self.subscriptions:
            client.subscribe(t, qos=1)
        self.connected.set()
        if self.on_connected:
            self.loop.call_soon_threadsafe(self.on_connected)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if client is not self.client:
            return
        self.connected.clear()
        if not self._dropping and self.before_connect:
            self.before_connect(client)  # paho reconnects by itself: refresh the Will first

    def _on_message(self, client, userdata, msg) -> None:
        if self.on_message and client is self.client:
            self.loop.call_soon_threadsafe(self.on_message, msg.topic, bytes(msg.payload))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message if connected; False when the link is down (the message is lost)."""
        c = self.client
        if c is None or not self.connected.is_set():
            return False
        info = c.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def drop(self) -> None:
        """Cut the TCP connection without DISCONNECT (the broker then sends the Will)."""
        self._dropping = True
        self.connected.clear()
        c, self.client = self.client, None
        if c is None:
            return
        sock = c.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await asyncio.to_thread(c.loop_stop)
        with contextlib.suppress(Exception):
            if sock is not None:
                sock.close()

    async def stop(self, last_words: list[tuple[str, bytes]] = ()) -> None:
        """Clean stop: publish ``last_words`` (e.g. NDEATH), wait for them, DISCONNECT."""
        self._dropping = True
        c, self.client = self.client, None
        if c is None:
            return
        if self.connected.is_set():
            infos = [c.publish(t, p, qos=1) for t, p in last_words]
            for info in infos:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(info.wait_for_publish, 2.0)
        self.connected.clear()
        c.disconnect()
        await asyncio.to_thread(c.loop_stop)


def json_cycle_payload(cycle: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": cycle["t_ns"] // 1_000_000,
        "cycle": cycle["cycle"],
        "cycle_time_s": cycle["cycle_time_s"],
        "pressure_mpa": cycle["pressure_mpa"],
        "result": cycle["result"],
        "reject_reason": cycle["reject_reason"],
        "count_total": cycle["count_total"],
        "count_good": cycle["count_good"],
    }


def json_state_payload(state: dict[str, Any]) -> dict[str, Any]:
    return {"ts": state["t_ns"] // 1_000_000, "state": state["state"], "reason": state["reason"]}


def garbage_payloads(kind: str, t_ns: int) -> bytes:
    """A bad JSON payload of the given kind (the platform must count it and carry on)."""
    ts = t_ns // 1_000_000
    if kind == "malformed":
        return f'{{"ts": {ts}, "cycle": 17, "cycle_time_s": 8'.encode()
    if kind == "wrong_types":
        return json.dumps(
            {
                "ts": "yesterday",
                "cycle": "seven",
                "cycle_time_s": "fast",
                "pressure_mpa": [1, 2],
                "result": 1,
                "reject_reason": 5,
                "count_total": "many",
                "count_good": None,
            }
        ).encode()
    if (
        kind == "nan"
    ):  # Python's json writes NaN/Infinity literals: not valid JSON, seen in the field
        return json.dumps(
            {
                "ts": ts,
                "cycle": 0,
                "cycle_time_s": math.nan,
                "pressure_mpa": math.inf,
                "result": "good",
                "reject_reason": None,
                "count_total": 0,
                "count_good": 0,
            }
        ).encode()
    if kind == "binary":
        return bytes(range(256))[::7]
    raise ValueError(f"unknown garbage kind {kind!r}")


JSON_GARBAGE = ("malformed", "wrong_types", "nan", "binary")
SPARKPLUG_GARBAGE = ("bad_protobuf", "nan", "unknown_alias")


# Sparkplug metrics of a press: (name, datatype). Aliases: (device index + 1) * 100 + position.
PRESS_METRICS = (
    ("cycle_time_s", spb.DOUBLE),
    ("pressure_mpa", spb.DOUBLE),
    ("cycle_result", spb.STRING),
    ("reject_reason", spb.STRING),
    ("count_total", spb.UINT64),
    ("count_good", spb.UINT64),
    ("state", spb.STRING),
    ("state_reason", spb.STRING),
)


class SparkplugEdgeNode:
    """One Sparkplug B edge node publishing for its presses (devices). Runs on the asyncio loop."""

    def __init__(
        self,
        group: str,
        edge_node: str,
        devices: dict[str, PressModel],
        options: MqttOptions,
        loop: asyncio.AbstractEventLoop,
        *,
        clock_ms: Callable[[], int],
        on_birth: Callable[[int], None] | None = None,
    ) -> None:
        self.group, self.edge_node = group, edge_node
        self.devices = devices
        self.clock_ms = clock_ms
        self.on_birth = on_birth
        self.aliases = {
            dev: {name: (i + 1) * 100 + j + 1 for j, (name, _) in enumerate(PRESS_METRICS)}
            for i, dev in enumerate(devices)
        }
        self.last_values: dict[str, dict[str, Any]] = {dev: {} for dev in devices}
        self.bd_seq = -1  # first connect makes it 0
        self.seq = 0
        self.born = False
        self.births = 0
        self._lock = threading.Lock()
        self.link = MqttLink(
            edge_node,
            options,
            loop,
            before_connect=self._before_connect,
            on_connected=self._birth,
            on_message=self._command,
            subscriptions=(
                spb.topic(group, "NCMD", edge_node),
                spb.topic(group, "DCMD", edge_node) + "/#",
            ),
        )

    def _death_payload(self) -> bytes:
        return spb.encode(
            [("bdSeq", None, spb.UINT64, self.bd_seq, self.clock_ms())],
            timestamp_ms=self.clock_ms(),
            seq=None,
        )

    def _before_connect(self, client: mqtt.Client) -> None:
        # paho thread or loop thread; bdSeq of the *next* session goes into its Will
        with self._lock:
            self.bd_seq = (self.bd_seq + 1) % 256
            self.born = False
            client.will_set(
                spb.topic(self.group, "NDEATH", self.edge_node), self._death_payload(), qos=1
            )

    def _next_seq(self) -> int:
        s = self.seq
        self.seq = (self.seq + 1) % 256
        return s

    def _birth(self) -> None:
        """NBIRTH (seq 0) then a DBIRTH per device, on (re)connect and on a Rebirth command."""
        now = self.clock_ms()
        self.seq = 0
        nbirth = spb.encode(
            [
                ("bdSeq", None, spb.UINT64, self.bd_seq, now),
                ("Node Control/Rebirth", None, spb.BOOLEAN, False, now),
                ("Properties/Hardware Make", None, spb.STRING, "kilnworks-sim", now),
            ],
            timestamp_ms=now,
            seq=self._next_seq(),
        )
        if not self.link.publish(spb.topic(self.group, "NBIRTH", self.edge_node), nbirth):
            return
        for dev, press in self.devices.items():
            # a device born before its first event still reports what it knows: state, counts
            current = {
                "state": press.state,
                "state_reason": press.reason,
                "count_total": press.count_total,
                "count_good": press.count_good,
            }
            self.last_values[dev] = self.last_values[dev] | current
            metrics = [
                (name, self.aliases[dev][name], dtype, self.last_values[dev].get(name), now)
                for name, dtype in PRESS_METRICS
            ]
            payload = spb.encode(metrics, timestamp_ms=now, seq=self._next_seq())
            self.link.publish(spb.topic(self.group, "DBIRTH", self.edge_node, dev), payload)
        self.born = True
        self.births += 1
        if self.on_birth:
            self.on_birth(self.bd_seq)

    def _command(self, topic: str, payload: bytes) -> None:
        try:
            p = spb.decode(payload)
        except Exception:
            log.warning("Sparkplug %s: undecodable command on %s", self.edge_node, topic)
            return
        for m in p.metrics:
            if m.name == "Node Control/Rebirth" and spb.get_value(m):
                log.info("Sparkplug %s: rebirth requested", self.edge_node)
                self._birth()

    def remember(self, device: str, values: dict[str, Any]) -> None:
        self.last_values[device].update(values)

    def publish_data(self, device: str, values: dict[str, Any], ts_ms: int) -> bool:
        """DDATA with aliases only. Returns False when not delivered (link down, not born)."""
        self.remember(device, values)
        if not self.born:
            return False
        dtypes = dict(PRESS_METRICS)
        metrics = [(None, self.aliases[device][k], dtypes[k], v, ts_ms) for k, v in values.items()]
        payload = spb.encode(metrics, timestamp_ms=ts_ms, seq=self._next_seq())
        return self.link.publish(spb.topic(self.group, "DDATA", self.edge_node, device), payload)

    def publish_garbage(self, device: str, kind: str, ts_ms: int) -> bool:
        if not self.born:
            return False
        t = spb.topic(self.group, "DDATA", self.edge_node, device)
        if kind == "bad_protobuf":
            self._next_seq()  # the node did send a message; consumers will see a seq gap
            return self.link.publish(t, b"\x0a\xff\xff\xff\x0f garbage \x00\x01")
        if kind == "nan":
            a = self.aliases[device]
            metrics = [
                (None, a["cycle_time_s"], spb.DOUBLE, math.nan, ts_ms),
                (None, a["pressure_mpa"], spb.DOUBLE, math.inf, ts_ms),
            ]
            return self.link.publish(
                t, spb.encode(metrics, timestamp_ms=ts_ms, seq=self._next_seq())
            )
        if kind == "unknown_alias":
            metrics = [(None, 9999, spb.DOUBLE, 1.0, ts_ms)]
            return self.link.publish(
                t, spb.encode(metrics, timestamp_ms=ts_ms, seq=self._next_seq())
            )
        raise ValueError(f"unknown Sparkplug garbage kind {kind!r} (expected {SPARKPLUG_GARBAGE})")

    def start(self) -> None:
        self.link.start()

    async def drop(self) -> None:
        self.born = False
        await self.link.drop()

    async def stop(self) -> None:
        last: list[tuple[str, bytes]] = []
        if self.born:
            now = self.clock_ms()
            for dev in self.devices:
                last.append(
                    (
                        spb.topic(self.group, "DDEATH", self.edge_node, dev),
                        spb.encode([], timestamp_ms=now, seq=self._next_seq()),
                    )
                )
            last.append((spb.topic(self.group, "NDEATH", self.edge_node), self._death_payload()))
        self.born = False
        await self.link.stop(last)
