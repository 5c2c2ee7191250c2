"""Sparkplug B: payload codec and host logic (unit), then edge nodes over a real Mosquitto."""

from __future__ import annotations

import struct
import uuid

import paho.mqtt.client as mqtt
import pytest

from core.config import ConfigError, parse_toml
from core.reading import Quality
from edge_agent.sources.sparkplug import (
    REASONS,
    SparkplugHost,
    SparkplugSource,
    parse_sparkplug_source,
)
from edge_agent.sources.sparkplug_b import (
    DataType,
    Payload,
    PayloadError,
    decode_payload,
    metric_value,
    set_metric_value,
)
from tests.edge_agent.mqtt_support import (
    EdgeNode,
    RecordingOutput,
    Subscriber,
    doc_source_table,
    running,
)
from tests.servers import Mosquitto, wait_until

ASSET = "xinghai/plant-1/forming-shop/press-2"
PRESS_METRICS = {
    "cycle_time_s": DataType.DOUBLE,
    "pressure_mpa": DataType.DOUBLE,
    "cycle_result": DataType.STRING,
    "reject_reason": DataType.STRING,
    "count_total": DataType.UINT64,
    "count_good": DataType.UINT64,
    "state": DataType.STRING,
    "state_reason": DataType.STRING,
}


@pytest.fixture
def config():
    return parse_sparkplug_source(doc_source_table("sparkplug"))


# -- payload codec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        (DataType.INT8, -128), (DataType.INT16, -2), (DataType.INT32, -(2**31)),
        (DataType.INT64, -(2**63)), (DataType.UINT32, 2**32 - 1), (DataType.UINT64, 2**64 - 1),
        (DataType.DOUBLE, 152.3), (DataType.FLOAT, 88.4), (DataType.FLOAT, 1.0000001),
        (DataType.BOOLEAN, True),
        (DataType.STRING, "crack"), (DataType.DATETIME, 1_764_000_000_123),
    ],
)  # fmt: skip
def test_metric_values_round_trip_through_the_wire(datatype: DataType, value: object) -> None:
    p = Payload(timestamp=1, seq=7)
    set_metric_value(p.metrics.add(name="m", alias=3), datatype, value)  # type: ignore[arg-type]
    back = decode_payload(p.SerializeToString())
    assert back.seq == 7 and back.metrics[0].alias == 3
    assert metric_value(back.metrics[0], back.metrics[0].datatype) == value


def test_known_wire_bytes_decode() -> None:
    # Hand-encoded per the spec: timestamp=1 (field 1 varint), seq=5 (field 3), one metric
    # (field 2) with alias=2 (field 2) and double_value=1.5 (field 13, fixed64).
    metric = bytes([0x10, 0x02, 0x69]) + struct.pack("<d", 1.5)
    raw = bytes([0x08, 0x01, 0x12, len(metric)]) + metric + bytes([0x18, 0x05])
    p = decode_payload(raw)
    assert (p.timestamp, p.seq, p.metrics[0].alias) == (1, 5, 2)
    assert metric_value(p.metrics[0], DataType.DOUBLE) == 1.5
    with pytest.raises(PayloadError):
        decode_payload(b"\x12\xff\x01")  # a length running past the end


# -- config -----------------------------------------------------------------------------------


def test_doc_sample_parses(config) -> None:
    assert config.groups == ("shangbu",)
    assert config.host_id == "kilnworks-xinghai"
    assert config.devices[0].match("shangbu", "xinghai-forming", "press-2") == ASSET
    assert config.devices[0].match("shangbu", "xinghai-forming", None) is None
    assert config.devices[0].match("shangbu", "xinghai-kilns", "press-2") is None
    assert config.metrics["cycle_time_s"].unit == "s"


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('groups = ["a/b"]', "groups", "group ids"),
        ('[[source.device]]\nedge_node = "{e}-x"\nasset = "{f}/s/l/a"', "device[0].asset",
         "not captured"),
        ('[[source.device]]\nedge_node = "n/x"\nasset = "e/s/l/a"', "device[0].edge_node",
         "no / + #"),
        ('[[source.device]]\nedge_node = "n"\nasset = "e/s/a"', "device[0].asset", "four"),
        ('[[source.device]]\nedge_node = "n"\nasset = "e/s/l/a"\nname = "x"', "device[0].name",
         "unknown key"),
        ('unlisted_metrics = "drop"\n[[source.device]]\nedge_node = "n"\nasset = "e/s/l/a"',
         "unlisted_metrics", "keep, ignore"),
    ],
)  # fmt: skip
def test_config_errors(body: str, key: str, expected: str) -> None:
    text = f'[[source]]\ntype = "sparkplug"\nname = "s"\nurl = "mqtt://h"\n{body}\n'
    with pytest.raises(ConfigError) as err:
        parse_sparkplug_source(next(parse_toml(text, "agent.toml").tables("source")))
    assert err.value.key == f"source[0].{key}"
    assert expected in err.value.expected


# -- host logic (no broker) -------------------------------------------------------------------


class Node:
    """Builds the messages of one edge node for the host, by hand."""

    def __init__(self, node_id: str = "xinghai-forming", bd_seq: int = 0) -> None:
        self.node_id, self.bd_seq, self.seq = node_id, bd_seq, 0

    def topic(self, kind: str, device: str | None = None) -> str:
        return f"spBv1.0/shangbu/{kind}/{self.node_id}" + (f"/{device}" if device else "")

    def _payload(self, ts: int, seq: bool = True) -> Payload:
        p = Payload(timestamp=ts)
        if seq:
            p.seq = self.seq
            self.seq = (self.seq + 1) % 256
        return p

    def nbirth(self, ts: int = 1000) -> tuple[str, bytes]:
        self.seq = 0
        p = self._payload(ts)
        set_metric_value(p.metrics.add(name="bdSeq"), DataType.UINT64, self.bd_seq)
        set_metric_value(p.metrics.add(name="Node Control/Rebirth"), DataType.BOOLEAN, False)
        return self.topic("NBIRTH"), p.SerializeToString()

    def dbirth(self, device: str = "press-2", ts: int = 1000, base: int = 1) -> tuple[str, bytes]:
        p = self._payload(ts)
        for i, (name, dt) in enumerate(PRESS_METRICS.items()):
            m = p.metrics.add(name=name, alias=base + i)
            if dt == DataType.STRING:
                set_metric_value(m, dt, "idle" if name == "state" else "")
            else:
                set_metric_value(m, dt, 0)
        return self.topic("DBIRTH", device), p.SerializeToString()

    def ddata(
        self,
        values: dict[int, tuple[DataType, object]],
        ts: int = 2000,
        device: str = "press-2",
        metric_ts: int | None = None,
    ) -> tuple[str, bytes]:
        p = self._payload(ts)
        for alias, (dt, value) in values.items():
            m = p.metrics.add(alias=alias)
            if metric_ts is not None:
                m.timestamp = metric_ts
            set_metric_value(m, dt, value)  # type: ignore[arg-type]
            m.ClearField("datatype")
        return self.topic("DDATA", device), p.SerializeToString()

    def ndeath(self, bd_seq: int | None = None) -> tuple[str, bytes]:
        p = Payload(timestamp=5000)
        set_metric_value(
            p.metrics.add(name="bdSeq"), DataType.UINT64, self.bd_seq if bd_seq is None else bd_seq
        )
        return self.topic("NDEATH"), p.SerializeToString()


class FakeClock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ns


def rebirth_requested(result, node_id: str = "xinghai-forming") -> bool:
    for topic, raw in result.commands:
        if topic == f"spBv1.0/shangbu/NCMD/{node_id}":
            m = decode_payload(raw).metrics[0]
            return m.name == "Node Control/Rebirth" and m.boolean_value is True
    return False


def test_births_define_aliases_and_data_resolves_them(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    assert host.handle(*node.nbirth(), 1).readings == []  # node metrics are protocol metrics
    birth = host.handle(*node.dbirth(), 1)
    assert {r.field: r.value for r in birth.readings}["state"] == "idle"
    assert ("sparkplug_online", True) in [(r.field, r.value) for r in birth.readings]
    values = {1: (DataType.DOUBLE, 31.5), 5: (DataType.UINT64, 1234), 3: (DataType.STRING, "good")}
    data = host.handle(*node.ddata(values, ts=1_764_000_000_000, metric_ts=1_764_000_000_500), 99)
    assert data.rejects == [] and data.commands == []
    got = {r.field: r for r in data.readings}
    assert got["cycle_time_s"].value == 31.5 and got["cycle_time_s"].unit == "s"
    assert got["count_total"].value == 1234 and type(got["count_total"].value) is int
    assert got["cycle_result"].value == "good"
    assert all(r.asset == ASSET and r.quality == Quality.GOOD for r in data.readings)
    assert got["count_total"].source_time_ns == 1_764_000_000_500 * 1_000_000
    assert got["count_total"].received_time_ns == 99
    assert host.status()["devices_online"] == [ASSET]


def test_birth_properties_give_the_unit_unless_the_config_does(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    host.handle(*node.nbirth(), 1)
    p = Payload(timestamp=1000, seq=node.seq)
    node.seq += 1
    for name, unit in (("pressure_mpa", "bar"), ("oil_temperature_c", "°C")):
        m = p.metrics.add(name=name, alias=len(p.metrics) + 1)
        set_metric_value(m, DataType.DOUBLE, 1.0)
        m.properties.keys.append("engUnit")
        m.properties.values.add(type=int(DataType.STRING), string_value=unit)
    result = host.handle(node.topic("DBIRTH", "press-2"), p.SerializeToString(), 1)
    units = {r.field: r.unit for r in result.readings}
    assert units["oil_temperature_c"] == "°C"  # from the birth
    assert units["pressure_mpa"] == "MPa"  # [[source.metric]] wins over the device


def test_node_metrics_map_to_an_asset_and_unlisted_metrics_can_be_ignored() -> None:
    text = """
[[source]]
type = "sparkplug"
name = "gateway"
url = "mqtt://127.0.0.1"
unlisted_metrics = "ignore"
  [[source.device]]
  edge_node = "{enterprise}-forming"
  asset = "{enterprise}/plant-1/forming-shop/gateway"
  [[source.metric]]
  name = "Line/Speed"
  field = "line_speed_m_min"
  unit = "m/min"
"""
    config = parse_sparkplug_source(next(parse_toml(text, "t.toml").tables("source")))
    host = SparkplugHost(config, FakeClock())
    node = Node()
    topic, _ = node.nbirth()
    p = Payload(timestamp=1000, seq=0)
    set_metric_value(p.metrics.add(name="bdSeq"), DataType.UINT64, 0)
    set_metric_value(p.metrics.add(name="Line/Speed", alias=1), DataType.FLOAT, 12.5)
    set_metric_value(p.metrics.add(name="Firmware", alias=2), DataType.STRING, "v1")
    birth = host.handle(topic, p.SerializeToString(), 1)
    assert [(r.asset, r.field, r.value, r.unit) for r in birth.readings] == [
        ("xinghai/plant-1/forming-shop/gateway", "line_speed_m_min", 12.5, "m/min")
    ]
    d = Payload(timestamp=2000, seq=1)
    set_metric_value(d.metrics.add(alias=1), DataType.FLOAT, 13.0)
    set_metric_value(d.metrics.add(alias=2), DataType.STRING, "v2")
    data = host.handle(node.topic("NDATA"), d.SerializeToString(), 1)
    assert [(r.field, r.value) for r in data.readings] == [("line_speed_m_min", 13.0)]
    assert data.rejects == [] and data.commands == []


def test_seq_gap_requests_a_rebirth_once_per_interval_and_keeps_the_data(config) -> None:
    clock = FakeClock()
    host = SparkplugHost(config, clock)
    node = Node()
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth(), 1)
    assert not rebirth_requested(host.handle(*node.ddata({5: (DataType.UINT64, 1)}), 1))
    node.seq += 3  # three messages lost
    gap = host.handle(*node.ddata({5: (DataType.UINT64, 5)}), 1)
    assert rebirth_requested(gap)
    assert [r.value for r in gap.readings] == [5]  # what did arrive is still delivered
    node.seq += 1
    again = host.handle(*node.ddata({5: (DataType.UINT64, 7)}), 1)
    assert again.commands == []  # rate-limited: the node is already asked
    clock.ns += 6_000_000_000
    node.seq += 1
    assert rebirth_requested(host.handle(*node.ddata({5: (DataType.UINT64, 9)}), 1))
    assert host.status()["seq_gaps"] == 3 and host.status()["rebirths_requested"] == 2


def test_seq_wraps_from_255_to_0_without_a_gap(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth(), 1)
    for i in range(300):
        result = host.handle(*node.ddata({5: (DataType.UINT64, i)}), 1)
        assert result.commands == [], f"gap reported at message {i}"
    assert host.status()["seq_gaps"] == 0


def test_data_before_birth_is_dead_lettered_and_asks_for_a_rebirth(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    node.seq = 17
    result = host.handle(*node.ddata({5: (DataType.UINT64, 1)}), 1)
    assert result.readings == []
    assert [r[0] for r in result.rejects] == ["data_before_birth"]
    assert rebirth_requested(result)


def test_redelivered_duplicates_are_not_gaps(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth(), 1)
    first = node.ddata({5: (DataType.UINT64, 1)})
    host.handle(*first, 1)
    host.handle(*node.ddata({5: (DataType.UINT64, 2)}), 1)
    again = host.handle(*first, 1, dup=True)  # broker re-sent it after a reconnect
    assert again.commands == [] and [r.value for r in again.readings] == [1]
    assert not rebirth_requested(host.handle(*node.ddata({5: (DataType.UINT64, 3)}), 1))
    assert host.status()["duplicates"] == 1


def test_ndeath_with_matching_bdseq_marks_stale_and_an_old_will_does_not(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node(bd_seq=4)
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth(), 1)
    old_will = host.handle(*node.ndeath(bd_seq=3), 1)  # a previous session's Will, late
    assert old_will.readings == [] and host.status()["devices_online"] == [ASSET]
    death = host.handle(*node.ndeath(), 1)
    assert [(r.asset, r.field, r.value, r.source_time_ns) for r in death.readings] == [
        (ASSET, "sparkplug_online", False, 5000 * 1_000_000)
    ]
    assert host.status()["devices_stale"] == [ASSET]
    # data after the death, before a new birth, not continuing the dead session's seq
    node.seq += 7
    late = host.handle(*node.ddata({5: (DataType.UINT64, 1)}), 1)
    assert [r[0] for r in late.rejects] == ["data_before_birth"]


def test_stragglers_of_the_previous_session_decode_with_its_aliases(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node(bd_seq=1)
    host.handle(*node.nbirth(ts=1000), 1)
    host.handle(*node.dbirth(ts=1000), 1)
    host.handle(*node.ddata({5: (DataType.UINT64, 1)}, ts=2000), 1)
    straggler = node.ddata({5: (DataType.UINT64, 2)}, ts=3000)  # published, then broker restart
    node.bd_seq = 2
    host.handle(*node.nbirth(ts=5000), 1)  # reconnected: new session, new aliases
    late = host.handle(*straggler, 1)  # the node's client re-sends it after the NBIRTH
    assert (late.rejects, late.commands) == ([], [])
    assert [(r.field, r.value) for r in late.readings] == [("count_total", 2)]
    host.handle(*node.dbirth(ts=5000, base=101), 1)
    new = host.handle(*node.ddata({105: (DataType.UINT64, 3)}, ts=6000), 1)
    assert [(r.field, r.value) for r in new.readings] == [("count_total", 3)]
    assert (new.rejects, new.commands) == ([], [])
    # a message stamped after the new NBIRTH, before the DBIRTH, is not a straggler
    host.handle(*node.nbirth(ts=7000), 1)
    early = host.handle(*node.ddata({105: (DataType.UINT64, 4)}, ts=7001), 1)
    assert [r[0] for r in early.rejects] == ["data_before_birth"]
    assert host.status()["previous_session_messages"] == 1


def test_data_continuing_a_dead_sessions_seq_is_kept(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node(bd_seq=3)
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth(), 1)
    host.handle(*node.ddata({5: (DataType.UINT64, 1)}), 1)
    host.handle(*node.ndeath(), 1)  # the Will, published when the broker lost the node
    late = host.handle(*node.ddata({5: (DataType.UINT64, 2)}), 1)  # re-sent by the node
    assert ([r.value for r in late.readings], late.rejects) == ([2], [])
    node.seq += 5  # not the dead session's next message: cannot be trusted
    stray = host.handle(*node.ddata({5: (DataType.UINT64, 9)}), 1)
    assert [r[0] for r in stray.rejects] == ["data_before_birth"] and stray.readings == []


def test_ddeath_marks_one_device_stale(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    host.handle(*node.nbirth(), 1)
    host.handle(*node.dbirth("press-2"), 1)
    p = Payload(timestamp=7000, seq=node.seq)
    node.seq += 1
    death = host.handle(node.topic("DDEATH", "press-2"), p.SerializeToString(), 1)
    assert [(r.field, r.value) for r in death.readings] == [("sparkplug_online", False)]
    assert host.status()["devices_stale"] == [ASSET]


def test_other_agents_edge_nodes_are_ignored_not_dead_lettered(config) -> None:
    host = SparkplugHost(config, FakeClock())
    other = Node("yangdong-kilns")  # matches no [[source.device]] edge_node pattern
    other.seq = 9
    results = [host.handle(*other.ddata({5: (DataType.UINT64, 1)}), 1)]
    results.append(host.handle(*other.nbirth(), 1))
    for result in results:
        assert (result.readings, result.rejects, result.commands) == ([], [], [])
    assert host.status()["ignored_messages"] == 2 and host.status()["rebirths_requested"] == 0


def test_bad_input_reasons(config) -> None:
    host = SparkplugHost(config, FakeClock())
    node = Node()
    assert host.handle("spBv1.0/shangbu/NBIRTH", b"", 1).rejects[0][0] == "bad_topic"
    assert host.handle(node.topic("NBIRTH"), b"\x12\xff", 1).rejects[0][0] == "malformed_payload"
    host.handle(*node.nbirth(), 1)
    unmapped = host.handle(*node.dbirth("dryer-1"), 1)
    assert [r[0] for r in unmapped.rejects] == []  # press pattern "{press}" maps any device
    other = Node("fushun-forming")
    host.handle(*other.nbirth(), 1)
    foreign = host.handle(*other.dbirth(), 1)
    assert [r[0] for r in foreign.rejects] == ["foreign_enterprise"] and foreign.readings == []
    host.handle(*node.dbirth(), 1)
    unknown = host.handle(*node.ddata({77: (DataType.UINT64, 1)}), 1)
    assert [r[0] for r in unknown.rejects] == ["unknown_alias"] and rebirth_requested(unknown)
    assert {
        r for r, *_ in host.handle(*node.ddata({1: (DataType.DOUBLE, float("nan"))}), 1).rejects
    } == {"not_finite"}
    assert set(REASONS) >= {"bad_topic", "malformed_payload", "foreign_enterprise"}


# -- over a real broker -----------------------------------------------------------------------


def make_source(broker: Mosquitto, protocol: str = "3.1.1") -> SparkplugSource:
    replace = {
        "mqtt://127.0.0.1:1883": broker.url,
        'protocol = "3.1.1"': f'protocol = "{protocol}"\nreconnect_min_s = 0.1',
        "kilnworks-xinghai-sparkplug": f"kw-spb-{uuid.uuid4().hex[:8]}",
        "rebirth_min_interval_s = 5.0": "rebirth_min_interval_s = 0.5",
    }
    return SparkplugSource(parse_sparkplug_source(doc_source_table("sparkplug", replace)))


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_gap_rebirth_and_new_aliases_over_mosquitto(mosquitto: Mosquitto, protocol: str) -> None:
    source = make_source(mosquitto, protocol)
    out = RecordingOutput()
    ncmds = Subscriber(mosquitto.port, "spBv1.0/shangbu/NCMD/#")
    state = Subscriber(mosquitto.port, "spBv1.0/STATE/#")
    node = EdgeNode(mosquitto.port, "shangbu", "xinghai-forming", {"press-2": PRESS_METRICS},
                    protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)  # fmt: skip
    try:
        with running(source, out):
            assert source.session.subscribed.wait(10)
            node.birth({"press-2": {"state": "running", "count_total": 10}})
            t0 = 1_764_000_000_000
            node.ddata("press-2", {"count_total": 11, "cycle_time_s": 30.5}, t0)
            wait_until(lambda: 11 in out.values("count_total"), 10, "first DDATA")
            assert out.values("state", ASSET) == ["running"]  # from the DBIRTH

            node.ddata("press-2", {"count_total": 15}, t0 + 30_000, skip_seq=3)  # lost messages
            wait_until(lambda: len(ncmds.messages) >= 1, 10, "rebirth NCMD")
            m = decode_payload(ncmds.messages[0][1]).metrics[0]
            assert (m.name, m.boolean_value) == ("Node Control/Rebirth", True)
            wait_until(lambda: node.rebirths == 1, 10, "node to see the NCMD")
            # The emulator re-births with aliases shifted by 100: the host must follow.
            wait_until(lambda: source.host.nodes[("shangbu", "xinghai-forming")].devices.get(
                "press-2") is not None and node.aliases.get(("press-2", "count_total"), 0) > 100,
                10, "rebirth")  # fmt: skip
            wait_until(lambda: out.values("sparkplug_online").count(True) >= 2, 10, "new DBIRTH")
            node.ddata("press-2", {"count_total": 16, "cycle_result": "reject"}, t0 + 60_000)
            wait_until(lambda: 16 in out.values("count_total"), 10, "DDATA with new aliases")
            assert out.values("cycle_result") == ["reject"]
            assert 15 in out.values("count_total")  # the message after the gap was kept

            node.ndeath()
            wait_until(lambda: False in out.values("sparkplug_online"), 10, "stale marker")
            status = source.status()
            assert status["devices_stale"] == [ASSET]
            assert [r[0] for r in out.rejects] == []
            assert state.messages and b'"online": true' in state.messages[-1][1]
    finally:
        node.close()
        ncmds.close()
        state.close()


@pytest.mark.integration
def test_will_of_a_crashed_edge_node_marks_stale(mosquitto: Mosquitto) -> None:
    source = make_source(mosquitto)
    out = RecordingOutput()
    node = EdgeNode(mosquitto.port, "shangbu", "xinghai-forming", {"press-2": PRESS_METRICS})
    try:
        with running(source, out):
            assert source.session.subscribed.wait(10)
            node.birth()
            wait_until(lambda: True in out.values("sparkplug_online"), 10, "DBIRTH")
            # A crash: the socket goes away without DISCONNECT, so the broker sends the Will.
            node.client.socket().close()
            wait_until(lambda: False in out.values("sparkplug_online"), 30, "Will -> stale")
        assert [r.asset for r in out.readings if r.field == "sparkplug_online"] == [ASSET] * 2
    finally:
        node.client.loop_stop()
