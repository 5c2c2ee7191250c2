"""Sparkplug B source: a host application that turns edge-node messages into readings.

Topics are ``spBv1.0/<group>/<type>/<edge_node>[/<device>]``. What the host keeps per edge node
(:class:`SparkplugHost`, pure logic, no I/O):

* **Births define the vocabulary.** NBIRTH (node) and DBIRTH (device) list every metric with
  its name, alias and datatype; DATA messages may carry only aliases. A birth's own values are
  readings too (they are the current values at birth time).
* **seq** runs 0..255 per edge node over NBIRTH, DBIRTH, NDATA, DDATA, DDEATH (NBIRTH is 0).
  A gap means messages were lost between the node and us, so we ask for a rebirth with
  ``NCMD Node Control/Rebirth = true`` (at most once per ``rebirth_min_interval_s`` per node).
  Data that arrives with known aliases is still delivered: aliases do not change until a
  rebirth, so a gap is no reason to throw away what did arrive.
* **DATA before BIRTH** (a node or device we hold no birth for, e.g. the agent started after the
  birth was published) cannot be decoded: it is dead-lettered (``data_before_birth``, with the
  raw payload) and a rebirth is requested.
* **Deaths mark data stale.** NDEATH (the node's MQTT Will) counts only if its ``bdSeq`` equals
  the bdSeq of the node's current NBIRTH (an older session's Will arriving late must not
  kill a live node); DDEATH kills one device. Staleness is written as a reading: the boolean
  field ``sparkplug_online`` (configurable ``online_field``) of the asset turns ``false`` at the
  death and ``true`` again at the next birth. We chose a marker over re-writing every metric's
  last value with Bad quality: copies would invent points (a repeated ``cycle_result`` would
  count a cycle twice in OEE), while one marker per asset is exact and easy to query.
* **Stragglers of the previous session**: after a broker restart the node's MQTT client may
  re-send DDATA it published before it reconnected *after* its new NBIRTH. Such a message is
  stamped before the new NBIRTH and was encoded with the old aliases, so it is decoded with the
  previous session's vocabulary (kept per device) and does not count against the new seq.
* **Stragglers after a death**: the broker publishes the node's Will (NDEATH) when the
  connection drops, and the node's client may re-send what it still held on reconnect, before
  its new NBIRTH. A DATA whose seq continues the dead session's is decoded with that session's
  aliases (``after_death_messages``); anything else before a birth is ``data_before_birth``.
* MQTT re-deliveries (``dup`` flag, after a reconnect) whose seq is just behind the last one are
  duplicates, not gaps: their readings are the same points again (idempotent downstream) and the
  seq state is left alone.

Edge nodes that no ``[[source.device]]`` could map (another agent's nodes on the same group) are
ignored and counted, never dead-lettered or asked to rebirth.

Optionally (``host_id``) the source acts as a Sparkplug 3.0 primary host application and
publishes ``spBv1.0/STATE/<host_id>`` (retained, ``{"online": true, "timestamp": ms}``; the MQTT
Will says ``false``), so edge nodes that wait for their primary host know we are there.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import Table
from core.reading import AssetPath, Quality, Reading, now_ns
from edge_agent.source import Output
from edge_agent.sources.mqtt_common import (
    CONNECTION_KEYS,
    ClientFactory,
    InboundMessage,
    MqttSession,
    MqttSettings,
    Will,
    make_client,
    parse_mqtt_settings,
)
from edge_agent.sources.sparkplug_b import (
    DataType,
    Payload,
    PayloadError,
    decode_payload,
    metric_value,
    set_metric_value,
)

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
MESSAGE_TYPES = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD")

#: Reject reasons this source reports (metric label values; keep them stable).
REASONS = (
    "bad_topic",  # not spBv1.0/<group>/<type>/<edge_node>[/<device>]
    "malformed_payload",  # not a Sparkplug B protobuf payload
    "data_before_birth",  # DATA from a node/device without a birth we hold (rebirth requested)
    "unknown_alias",  # a metric alias the birth did not define (rebirth requested)
    "unknown_device",  # no [[source.device]] mapping for this edge node / device
    "foreign_enterprise",  # mapped to an enterprise this source may not write for
    "unsupported_type",  # DataSet, Template, Bytes, File, arrays: not stored (at birth)
    "wrong_type",  # a value in the wrong protobuf field for its datatype
    "not_finite",  # NaN or infinity
)

# Metrics that steer the protocol, not the process: never readings.
_PROTOCOL_PREFIXES = ("Node Control/", "Device Control/", "Properties/")
_PROTOCOL_NAMES = frozenset({"bdSeq"})


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    """One ``[[source.device]]``: which (group, edge node, device) is which asset.

    ``group``/``edge_node``/``device`` are patterns where ``{name}`` captures text used in the
    ``asset`` template; ``device = None`` maps the node's own metrics (NBIRTH/NDATA)."""

    group: re.Pattern[str]
    edge_node: re.Pattern[str]
    device: re.Pattern[str] | None
    asset: str

    def match(self, group: str, edge_node: str, device: str | None) -> str | None:
        if (device is None) != (self.device is None):
            return None
        captures: dict[str, str] = {}
        for pattern, text in (
            (self.group, group),
            (self.edge_node, edge_node),
            (self.device, device),
        ):
            if pattern is None:
                continue
            m = pattern.fullmatch(text or "")
            if m is None:
                return None
            captures.update(m.groupdict())
        return self.asset.format_map(captures)


@dataclass(frozen=True, slots=True)
class MetricMapping:
    field: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class SparkplugSourceConfig:
    name: str
    mqtt: MqttSettings
    groups: tuple[str, ...]
    devices: tuple[DeviceMapping, ...]
    metrics: dict[str, MetricMapping] = field(default_factory=dict)
    unlisted_metrics: str = "keep"  # keep (field = sanitised name) | ignore
    host_id: str = ""
    rebirth_min_interval_s: float = 5.0
    online_field: str = "sparkplug_online"
    enterprises: tuple[str, ...] = ()


_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _id_pattern(
    table: Table, name: str, default: str | None
) -> tuple[re.Pattern[str] | None, set[str]]:
    text = table.str(name, default)
    if text is None:
        return None, set()
    if "/" in text or "+" in text or "#" in text:
        raise table.error(name, f"expected a Sparkplug id pattern (no / + #), got {text!r}")
    out, names, pos = [], set(), 0
    for m in _CAPTURE.finditer(text):
        out.append(re.escape(text[pos : m.start()]))
        if m.group(1) in names:
            raise table.error(name, f"capture {{{m.group(1)}}} used twice")
        names.add(m.group(1))
        out.append(f"(?P<{m.group(1)}>[^/]+?)")
        pos = m.end()
    rest = text[pos:]
    if "{" in rest or "}" in rest:
        raise table.error(name, f"expected literal text and {{name}} captures, got {text!r}")
    out.append(re.escape(rest))
    return re.compile("".join(out)), names


def _parse_device(table: Table) -> DeviceMapping:
    table.check_keys("group", "edge_node", "device", "asset")
    group, g_names = _id_pattern(table, "group", "{_group}")
    edge_node, n_names = _id_pattern(table, "edge_node", None)
    device, d_names = _id_pattern(table, "device", None)
    names = g_names | n_names | d_names
    if len(names) != len(g_names) + len(n_names) + len(d_names):
        raise table.error(
            "asset", "a capture name appears in more than one of group/edge_node/device"
        )
    asset = table.str("asset")
    used = set(_CAPTURE.findall(asset))
    if used - names:
        raise table.error(
            "asset", f"uses {sorted(used - names)}, not captured by group/edge_node/device"
        )
    if not used:
        try:
            AssetPath.parse(asset)
        except ValueError as exc:
            raise table.error("asset", str(exc)) from None
    assert group is not None and edge_node is not None
    return DeviceMapping(group, edge_node, device, asset)


def parse_sparkplug_source(table: Table) -> SparkplugSourceConfig:
    """Check a ``[[source]]`` table of ``type = "sparkplug"`` and build its config.

    Called by the agent's config loader. Raises :class:`core.config.ConfigError` naming the
    file, key and expectation. Touches no network.
    """
    table.check_keys(
        "type", "name", "groups", "device", "metric", "unlisted_metrics", "host_id",
        "rebirth_min_interval_s", "online_field", "enterprises", *CONNECTION_KEYS,
    )  # fmt: skip
    if "type" in table:
        table.str("type", choices=("sparkplug",))
    name = table.str("name")
    groups = tuple(table.list_of_str("groups", ["+"]))
    for g in groups:
        if not g or "/" in g or "#" in g or ("+" in g and g != "+"):
            raise table.error("groups", f"expected group ids (or '+'), got {g!r}")
    devices = tuple(_parse_device(t) for t in table.tables("device", required=True))
    if not devices:
        raise table.error("device", "expected at least one [[source.device]]")
    metrics: dict[str, MetricMapping] = {}
    for t in table.tables("metric"):
        t.check_keys("name", "field", "unit")
        metric = t.str("name")
        if metric in metrics:
            raise t.error("name", f"metric {metric!r} mapped twice")
        metrics[metric] = MetricMapping(t.str("field", _field_name(metric)), t.str("unit", ""))
    host_id = table.str("host_id", "")
    if host_id and any(c in host_id for c in "/+#"):
        raise table.error("host_id", f"expected an id without / + #, got {host_id!r}")
    return SparkplugSourceConfig(
        name=name,
        mqtt=parse_mqtt_settings(table, default_client_id=f"kilnworks-{name}"),
        groups=groups,
        devices=devices,
        metrics=metrics,
        unlisted_metrics=table.str("unlisted_metrics", "keep", choices=("keep", "ignore")),
        host_id=host_id,
        rebirth_min_interval_s=table.float("rebirth_min_interval_s", 5.0, min=0.0, max=3600.0),
        online_field=table.str("online_field", "sparkplug_online"),
        enterprises=tuple(table.list_of_str("enterprises", [])),
    )


def _field_name(metric: str) -> str:
    """Field name for an unlisted metric: ``Press/Cycle Time`` -> ``press_cycle_time``."""
    return re.sub(r"[^0-9a-zA-Z_]+", "_", metric).strip("_").lower() or "metric"


# -- host logic -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Metric:
    name: str
    datatype: int
    field: str | None  # None: not stored (protocol metric, ignored or unsupported)
    unit: str = ""


@dataclass(slots=True)
class _Device:
    asset: str | None
    metrics_by_alias: dict[int, _Metric] = field(default_factory=dict)
    metrics_by_name: dict[str, _Metric] = field(default_factory=dict)
    online: bool = True
    # The vocabulary of the previous node session, for its stragglers (see _ddata).
    previous: _Device | None = None


@dataclass(slots=True)
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    born: bool = False
    birth_ms: int | None = None  # NBIRTH payload timestamp of the current session
    node: _Device | None = None
    devices: dict[str, _Device] = field(default_factory=dict)
    last_rebirth_request_ns: int | None = None


@dataclass(slots=True)
class HostResult:
    """What one message produced: readings, rejects ``(reason, detail)``, commands to publish
    ``(topic, payload)``, and assets heard from ``(asset, time_ns)``."""

    readings: list[Reading] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    commands: list[tuple[str, bytes]] = field(default_factory=list)
    seen: list[tuple[str, int]] = field(default_factory=list)


class SparkplugHost:
    """Sparkplug B host state machine. Not thread-safe: one caller (the session's worker),
    messages in arrival order. ``handle`` never raises for bad input."""

    def __init__(self, config: SparkplugSourceConfig, clock: Callable[[], int] = now_ns) -> None:
        self.config = config
        self.clock = clock
        self.nodes: dict[tuple[str, str], _Node] = {}
        self.counters: Counter[str] = Counter()
        self._enterprises = frozenset(config.enterprises)
        self._wanted_nodes: dict[tuple[str, str], bool] = {}

    # Public -------------------------------------------------------------------------------

    def handle(self, topic: str, raw: bytes, received_ns: int, dup: bool = False) -> HostResult:
        out = HostResult()
        parts = topic.split("/")
        if len(parts) == 3 and parts[0] == NAMESPACE and parts[1] == "STATE":
            return out  # another (or our own) host application's STATE
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in MESSAGE_TYPES:
            out.rejects.append(("bad_topic", f"not a Sparkplug B topic: {topic!r}"))
            return out
        group, kind, node_id = parts[1], parts[2], parts[3]
        device_id = parts[4] if len(parts) == 5 else None
        if (device_id is None) != (kind[0] == "N"):
            out.rejects.append(
                (
                    "bad_topic",
                    f"{kind} with{'out' if device_id is None else ''} a device id: {topic!r}",
                )
            )
            return out
        if kind in ("NCMD", "DCMD"):
            return out  # commands to edge nodes (ours or another host's)
        if not self._wanted(group, node_id):
            # Another agent's edge node on the same group: not ours to decode, dead-letter or
            # ask for rebirths.
            self.counters["ignored"] += 1
            return out
        try:
            payload = decode_payload(raw)
        except PayloadError as exc:
            out.rejects.append(("malformed_payload", f"{topic}: {exc}"))
            return out
        self.counters[kind.lower()] += 1
        node = self.nodes.setdefault((group, node_id), _Node())
        handler = getattr(self, f"_{kind.lower()}")
        handler(out, group, node_id, node, device_id, payload, received_ns, dup)
        return out

    def _wanted(self, group: str, node_id: str) -> bool:
        key = (group, node_id)
        wanted = self._wanted_nodes.get(key)
        if wanted is None:
            wanted = any(
                m.group.fullmatch(group) and m.edge_node.fullmatch(node_id)
                for m in self.config.devices
            )
            if len(self._wanted_nodes) < 100_000:
                self._wanted_nodes[key] = wanted
        return wanted

    def status(self) -> dict[str, object]:
        online, stale = [], []
        for (group, node_id), node in sorted(self.nodes.items()):
            for dev_id, dev in sorted(node.devices.items()):
                name = dev.asset or f"{group}/{node_id}/{dev_id}"
                (online if node.born and dev.online else stale).append(name)
        return {
            "edge_nodes": len(self.nodes),
            "edge_nodes_online": sum(1 for n in self.nodes.values() if n.born),
            "devices_online": online,
            "devices_stale": stale,
            "seq_gaps": self.counters["seq_gaps"],
            "rebirths_requested": self.counters["rebirths_requested"],
            "duplicates": self.counters["duplicates"],
            "ignored_messages": self.counters["ignored"],
            "previous_session_messages": self.counters["previous_session"],
            "after_death_messages": self.counters["after_death"],
        }

    # Message kinds ------------------------------------------------------------------------

    def _nbirth(self, out, group, node_id, node, _dev, payload, received_ns, dup) -> None:
        bd_seq = _bd_seq(payload)
        if dup and node.born and bd_seq is not None and bd_seq == node.bd_seq:
            # The broker re-sent a birth we already hold (no PUBACK reached it): resetting
            # now would forget the device births that followed it.
            self.counters["duplicates"] += 1
            return
        node.bd_seq = bd_seq
        node.seq = payload.seq if payload.HasField("seq") else 0
        node.born = True
        node.last_rebirth_request_ns = None
        # A new NBIRTH starts a new session: its devices must birth again (their aliases may
        # have changed), so until their DBIRTH they hold no vocabulary and count as stale. No
        # marker is written here: in a rebirth the DBIRTH follows at once, and a false/true
        # pair per rebirth would only be noise.
        node.birth_ms = payload.timestamp if payload.HasField("timestamp") else None
        for device in node.devices.values():
            device.online = False
            if device.metrics_by_name:
                device.previous = _Device(
                    device.asset, dict(device.metrics_by_alias), dict(device.metrics_by_name)
                )
            device.metrics_by_alias.clear()
            device.metrics_by_name.clear()
        asset = self._asset(out, group, node_id, None, report=False)
        node.node = _Device(asset)
        self._define(out, node.node, payload, group, node_id, None)
        self._values(out, node.node, payload, received_ns, birth=True)

    def _dbirth(self, out, group, node_id, node, dev_id, payload, received_ns, dup) -> None:
        if not node.born:
            self._not_born(out, group, node_id, f"DBIRTH of {dev_id}")
            return
        if self._seq_is_duplicate(out, group, node_id, node, payload, dup):
            return  # the same birth again: the device state it defines is already ours
        device = _Device(self._asset(out, group, node_id, dev_id))
        old = node.devices.get(dev_id)
        device.previous = old.previous if old is not None else None
        node.devices[dev_id] = device
        self._define(out, device, payload, group, node_id, dev_id)
        self._values(out, device, payload, received_ns, birth=True)
        if device.asset:
            self._mark(out, device.asset, True, self._payload_time(payload, received_ns))

    def _ndata(self, out, group, node_id, node, _dev, payload, received_ns, dup) -> None:
        if not node.born or node.node is None:
            self._not_born(out, group, node_id, "NDATA")
            return
        if self._seq_is_duplicate(out, group, node_id, node, payload, dup):
            self._values(out, node.node, payload, received_ns)
            return
        self._values(out, node.node, payload, received_ns, node=(group, node_id))

    def _ddata(self, out, group, node_id, node, dev_id, payload, received_ns, dup) -> None:
        if not node.born:
            known = node.devices.get(dev_id)
            seq = payload.seq if payload.HasField("seq") else None
            continues = node.seq is not None and seq == (node.seq + 1) % 256
            if known is not None and known.metrics_by_name and (dup or continues):
                # A message of the session that has just died, arriving after its NDEATH: the
                # broker publishes the Will when the connection drops, while the node's client
                # still holds messages it re-sends on reconnect (before its new NBIRTH). Its seq
                # continues the dead session's (or the broker re-sent one we had): decode it
                # with that session's aliases instead of dead-lettering real data.
                self.counters["after_death"] += 1
                if continues:
                    node.seq = seq
                self._values(out, known, payload, received_ns)
                return
        device = node.devices.get(dev_id) if node.born else None
        if device is not None and self._straggler(node, device, payload):
            # Stamped before the current NBIRTH: a message of the previous session that the
            # node's client re-sent after reconnecting (seen when the broker restarts). It was
            # encoded with the previous births' aliases and is outside the new seq sequence.
            self.counters["previous_session"] += 1
            assert device.previous is not None
            self._values(out, device.previous, payload, received_ns)
            return
        if device is None or not device.metrics_by_name:
            self._not_born(out, group, node_id, f"DDATA of {dev_id}")
            return
        duplicate = self._seq_is_duplicate(out, group, node_id, node, payload, dup)
        self._values(
            out, device, payload, received_ns, node=None if duplicate else (group, node_id)
        )
        if device.asset and not device.online:
            device.online = True  # data after a DDEATH without DBIRTH: alive again
            self._mark(out, device.asset, True, self._payload_time(payload, received_ns))

    def _ddeath(self, out, group, node_id, node, dev_id, payload, received_ns, dup) -> None:
        device = node.devices.get(dev_id)
        if node.born:
            self._seq_is_duplicate(out, group, node_id, node, payload, dup)
        if device is not None and device.online:
            device.online = False
            if device.asset:
                self._mark(out, device.asset, False, self._payload_time(payload, received_ns))

    def _ndeath(self, out, group, node_id, node, _dev, payload, received_ns, _dup) -> None:
        bd_seq = _bd_seq(payload)
        if not node.born or (
            bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq
        ):
            # The Will of an older session, delivered after the node already re-birthed.
            self.counters["ndeath_ignored"] += 1
            return
        node.born = False
        # node.seq is kept: the dead session's stragglers may still arrive (see _ddata).
        time_ns = self._payload_time(payload, received_ns)
        for device in node.devices.values():
            if device.online and device.asset:
                self._mark(out, device.asset, False, time_ns)
            device.online = False
        if node.node is not None and node.node.asset:
            self._mark(out, node.node.asset, False, time_ns)

    # Helpers ------------------------------------------------------------------------------

    @staticmethod
    def _straggler(node: _Node, device: _Device, payload: Any) -> bool:
        """Stamped before the current NBIRTH *and* outside its seq sequence. Both: a node's
        clock may stamp a current-session message a little before its NBIRTH (event time
        vs. publish time), and the seq then says it belongs to the new session."""
        if device.previous is None or node.birth_ms is None or not payload.HasField("timestamp"):
            return False
        if payload.timestamp >= node.birth_ms:
            return False
        if payload.HasField("seq") and node.seq is not None:
            return payload.seq != (node.seq + 1) % 256
        return True

    def _seq_is_duplicate(self, out, group, node_id, node, payload, dup) -> bool:
        """Advance the node's seq; request a rebirth on a gap. True for an MQTT re-delivery."""
        seq = payload.seq if payload.HasField("seq") else None
        last = node.seq
        if seq is None or last is None:
            node.seq = seq
            return False
        expected = (last + 1) % 256
        if seq == expected:
            node.seq = seq
            return False
        behind = (last - seq) % 256
        if dup and behind < 128:
            self.counters["duplicates"] += 1
            return True
        self.counters["seq_gaps"] += 1
        log.warning(
            "sparkplug source %s: seq gap from %s/%s: expected %d, got %d; requesting rebirth",
            self.config.name, group, node_id, expected, seq,
        )  # fmt: skip
        node.seq = seq
        self._request_rebirth(out, group, node_id, node)
        return False

    def _not_born(self, out: HostResult, group: str, node_id: str, what: str) -> None:
        out.rejects.append(
            (
                "data_before_birth",
                f"{what} from {group}/{node_id} before its birth; rebirth requested",
            )
        )
        node = self.nodes[(group, node_id)]
        self._request_rebirth(out, group, node_id, node)

    def _request_rebirth(self, out: HostResult, group: str, node_id: str, node: _Node) -> None:
        now = self.clock()
        last = node.last_rebirth_request_ns
        if last is not None and now - last < self.config.rebirth_min_interval_s * 1e9:
            return
        node.last_rebirth_request_ns = now
        self.counters["rebirths_requested"] += 1
        out.commands.append(
            (f"{NAMESPACE}/{group}/NCMD/{node_id}", rebirth_command(now // 1_000_000))
        )

    def _asset(
        self, out: HostResult, group: str, node_id: str, device_id: str | None, report: bool = True
    ) -> str | None:
        for mapping in self.config.devices:
            asset = mapping.match(group, node_id, device_id)
            if asset is None:
                continue
            try:
                path = AssetPath.parse(asset)
            except ValueError as exc:
                out.rejects.append(("unknown_device", f"{group}/{node_id}/{device_id}: {exc}"))
                return None
            if self._enterprises and path.enterprise not in self._enterprises:
                out.rejects.append(
                    ("foreign_enterprise", f"{group}/{node_id}/{device_id} -> {asset}")
                )
                return None
            return asset
        if report:
            out.rejects.append(
                ("unknown_device", f"no [[source.device]] maps {group}/{node_id}/{device_id}")
            )
        return None

    def _define(self, out, device: _Device, payload, group, node_id, dev_id) -> None:
        """Learn names, aliases and datatypes from a birth."""
        for m in payload.metrics:
            if not m.name:
                continue
            target = None
            if not (m.name in _PROTOCOL_NAMES or m.name.startswith(_PROTOCOL_PREFIXES)):
                mapped = self.config.metrics.get(m.name)
                if mapped is not None:
                    target = mapped
                elif self.config.unlisted_metrics == "keep":
                    target = MetricMapping(_field_name(m.name))
            dt = m.datatype
            if target is not None and dt not in _STORED_TYPES:
                out.rejects.append(
                    (
                        "unsupported_type",
                        f"{group}/{node_id}/{dev_id} metric {m.name!r}: datatype {dt} not stored",
                    )
                )
                target = None
            unit = (target.unit or _eng_unit(m)) if target else ""
            metric = _Metric(m.name, dt, target.field if target else None, unit)
            device.metrics_by_name[m.name] = metric
            if m.HasField("alias"):
                device.metrics_by_alias[m.alias] = metric

    def _values(
        self, out, device: _Device, payload, received_ns, *, birth=False, node=None
    ) -> None:
        """Readings from a birth's or a DATA message's metrics."""
        payload_ms = payload.timestamp if payload.HasField("timestamp") else None
        asset = device.asset
        if asset is None:
            return
        last_ns = None
        for m in payload.metrics:
            if m.name:
                metric = device.metrics_by_name.get(m.name)
            elif m.HasField("alias"):
                metric = device.metrics_by_alias.get(m.alias)
            else:
                metric = None
            if metric is None:
                out.rejects.append(
                    ("unknown_alias", f"{asset}: metric {m.name or m.alias!r} not in the birth")
                )
                if node is not None:
                    self._request_rebirth(out, node[0], node[1], self.nodes[node])
                continue
            if metric.field is None or m.is_null or m.is_transient:
                continue
            dt = m.datatype if m.HasField("datatype") and m.datatype else metric.datatype
            try:
                value = metric_value(m, dt)
            except PayloadError as exc:
                out.rejects.append(("wrong_type", f"{asset} {metric.name}: {exc}"))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                out.rejects.append(("not_finite", f"{asset} {metric.name}: {value!r}"))
                continue
            if m.HasField("timestamp"):
                time_ns = m.timestamp * 1_000_000
            elif payload_ms is not None:
                time_ns = payload_ms * 1_000_000
            else:
                time_ns = received_ns
            last_ns = time_ns
            out.readings.append(
                Reading(asset, metric.field, value, Quality.GOOD, time_ns, received_ns, metric.unit)
            )
        if last_ns is not None or birth:
            out.seen.append((asset, last_ns if last_ns is not None else received_ns))

    def _mark(self, out: HostResult, asset: str, online: bool, time_ns: int) -> None:
        out.readings.append(
            Reading(asset, self.config.online_field, online, Quality.GOOD, time_ns, self.clock())
        )

    @staticmethod
    def _payload_time(payload: Any, received_ns: int) -> int:
        return payload.timestamp * 1_000_000 if payload.HasField("timestamp") else received_ns


_STORED_TYPES = frozenset(
    int(t)
    for t in (
        DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
        DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT, DataType.DOUBLE,
        DataType.BOOLEAN, DataType.STRING, DataType.DATETIME, DataType.TEXT, DataType.UUID,
    )
)  # fmt: skip


def _eng_unit(metric: Any) -> str:
    """The unit a birth declares in the metric's properties (``engUnit``, the key Ignition
    and most Sparkplug gateways use), or ""."""
    if not metric.HasField("properties"):
        return ""
    props = metric.properties
    for key, value in zip(props.keys, props.values, strict=False):
        if key == "engUnit" and value.WhichOneof("value") == "string_value":
            return str(value.string_value)
    return ""


def _bd_seq(payload: Any) -> int | None:
    for m in payload.metrics:
        if m.name == "bdSeq":
            try:
                return int(metric_value(m, m.datatype or DataType.UINT64))
            except PayloadError:
                return None
    return None


def rebirth_command(timestamp_ms: int) -> bytes:
    """The NCMD payload asking an edge node to publish its births again."""
    payload = Payload(timestamp=timestamp_ms)
    metric = payload.metrics.add(name=REBIRTH_METRIC, timestamp=timestamp_ms)
    set_metric_value(metric, DataType.BOOLEAN, True)
    return payload.SerializeToString()


# -- the source -------------------------------------------------------------------------------


class SparkplugSource:
    """The ``sparkplug`` source (implements :class:`edge_agent.source.Source`)."""

    def __init__(
        self,
        config: SparkplugSourceConfig,
        *,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock
        self.host = SparkplugHost(config, clock)
        will = None
        self._state_topic = ""
        self._birth_ms = clock() // 1_000_000
        if config.host_id:
            self._state_topic = f"{NAMESPACE}/STATE/{config.host_id}"
            will = Will(self._state_topic, self._state(False), qos=1, retain=True)
        self.session = MqttSession(
            config.name,
            config.mqtt,
            [f"{NAMESPACE}/{g}/#" for g in config.groups],
            self._convert,
            client_factory=client_factory,
            clock=clock,
            will=will,
            on_connected=self._announce if config.host_id else None,
        )

    def _state(self, online: bool) -> bytes:
        # Sparkplug 3.0 host STATE: the Will's timestamp must equal the birth's.
        return json.dumps({"online": online, "timestamp": self._birth_ms}).encode()

    def _announce(self, session: MqttSession) -> None:
        session.publish(self._state_topic, self._state(True), qos=1, retain=True)

    def _convert(self, message: InboundMessage, output: Output) -> list[Reading]:
        result = self.host.handle(message.topic, message.payload, message.received_ns, message.dup)
        for reason, detail in result.rejects:
            output.reject(self.name, reason, detail, message.payload)
        for asset, time_ns in result.seen:
            output.seen(self.name, asset, time_ns)
        for topic, payload in result.commands:
            # QoS 0 as the spec says for NCMD; if it is lost the next gap asks again.
            if not self.session.publish(topic, payload, qos=0):
                log.warning(
                    "sparkplug source %s: cannot send %s now (not connected)", self.name, topic
                )
        return result.readings

    async def run(self, output: Output) -> None:
        await self.session.run(output)

    def status(self) -> dict[str, object]:
        return {"type": "sparkplug", **self.session.status(), **self.host.status()}
