"""MQTT JSON source: config parsing and payload mapping (unit), then over a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import uuid
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest

from core.config import ConfigError, Table, parse_toml
from core.reading import Quality
from edge_agent.sources.mqtt_common import InboundMessage
from edge_agent.sources.mqtt_json import (
    REASONS,
    JsonConverter,
    MqttJsonSource,
    parse_mqtt_json_source,
)
from tests.edge_agent.mqtt_support import (
    RecordingOutput,
    doc_source_table,
    publish_all,
    publisher,
    running,
    write_pki,
)
from tests.servers import Mosquitto, wait_until

ASSET = "xinghai/plant-1/forming-shop/press-1"
CYCLE_TOPIC = "shangbu/xinghai/plant-1/forming-shop/press-1/cycle"
STATE_TOPIC = "shangbu/xinghai/plant-1/forming-shop/press-1/state"


def cycle(n: int, **over: object) -> bytes:
    doc = {
        "ts": 1_764_000_000_000 + n * 90_000,
        "cycle": n,
        "cycle_time_s": 88.4 + n / 10,
        "pressure_mpa": 152.3,
        "result": "good" if n % 5 else "reject",
        "reject_reason": None if n % 5 else "crack",
        "count_total": n,
        "count_good": n - n // 5,
    }
    doc.update(over)
    return json.dumps(doc).encode()


def message(topic: str, payload: bytes | str, received_ns: int = 42) -> InboundMessage:
    raw = payload.encode() if isinstance(payload, str) else payload
    return InboundMessage(topic, raw, 1, 1, False, False, received_ns, 1)


@pytest.fixture
def config():
    return parse_mqtt_json_source(doc_source_table("mqtt_json"))


# -- config ---------------------------------------------------------------------------------


def test_doc_sample_parses_with_connection_defaults(config) -> None:
    assert config.name == "presses-json"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.protocol) == ("127.0.0.1", 1883, "5")
    assert config.mqtt.qos == 1 and config.mqtt.clean_start is False
    assert config.mqtt.client_id == "kilnworks-xinghai-presses-json"
    assert [t.subscription for t in config.topics] == [
        "shangbu/+/+/+/+/cycle",
        "shangbu/+/+/+/+/state",
    ]
    assert [f.field for f in config.topics[0].fields] == [
        "cycle_time_s", "pressure_mpa", "cycle_result", "reject_reason", "count_total",
        "count_good",
    ]  # fmt: skip


BASE = """
[[source]]
type = "mqtt_json"
name = "p"
url = "{url}"
{extra}
  [[source.topic]]
  pattern = "{pattern}"
  {topic_extra}
    [[source.topic.field]]
    path = "v"
"""


@pytest.mark.parametrize(
    ("url", "extra", "pattern", "topic_extra", "key", "expected"),
    [
        ("http://x", "", "a/{enterprise}/{site}/{line}/{asset}", 'time_path = "ts"', "url", "mqtt://"),
        ("mqtt://h", "protocol = '4'", "a/{enterprise}/{site}/{line}/{asset}", 'time_path = "ts"',
         "protocol", "one of 5, 3.1.1"),
        ("mqtt://h", "", "a/#/b", 'time_path = "ts"', "topic[0].pattern", "last level"),
        ("mqtt://h", "", "a/{x}", 'time_path = "ts"', "topic[0].asset", "required unless"),
        ("mqtt://h", "", "a/{x}", 'asset = "{y}/s/l/a"\n  time_path = "ts"', "topic[0].asset",
         "not captured"),
        ("mqtt://h", "", "a/{x}", 'asset = "e/s/l/{x}"', "topic[0].time_path", "required"),
        ("mqtt://h", "qos = 2", "a/{x}", 'asset = "e/s/l/{x}"\n  time_path = "t"', "qos", "[0, 1]"),
        ("mqtt://h", "sesion_expiry_s = 5", "a/{x}", 'asset = "e/s/l/{x}"\n  time_path = "t"',
         "sesion_expiry_s", "unknown key"),
        ("mqtts://h", "[source.tls]\nca_file = '/nonexistent/ca.pem'", "a/{x}",
         'asset = "e/s/l/{x}"\n  time_path = "t"', "tls.ca_file", "does not exist"),
    ],
)  # fmt: skip
def test_config_errors_name_file_key_and_expectation(
    url: str, extra: str, pattern: str, topic_extra: str, key: str, expected: str
) -> None:
    text = BASE.format(url=url, extra=extra, pattern=pattern, topic_extra=topic_extra)
    table = next(parse_toml(text, "agent.toml").tables("source"))
    with pytest.raises(ConfigError) as err:
        parse_mqtt_json_source(table)
    assert err.value.file == "agent.toml"
    assert err.value.key == f"source[0].{key}"
    assert expected in err.value.expected


def test_password_from_environment(monkeypatch) -> None:
    text = BASE.format(
        url="mqtt://h", extra='username = "agent"\npassword_env = "KW_TEST_MQTT_PW"',
        pattern="a/{x}", topic_extra='asset = "e/s/l/{x}"\n  time_path = "t"',
    )  # fmt: skip
    table = next(parse_toml(text, "agent.toml").tables("source"))
    with pytest.raises(ConfigError, match="KW_TEST_MQTT_PW is not set"):
        parse_mqtt_json_source(table)
    monkeypatch.setenv("KW_TEST_MQTT_PW", "s3cret")
    assert parse_mqtt_json_source(table).mqtt.password == "s3cret"


# -- mapping --------------------------------------------------------------------------------


def test_cycle_payload_maps_to_typed_readings_with_source_time(config) -> None:
    out = RecordingOutput()
    readings = JsonConverter(config)(message(CYCLE_TOPIC, cycle(7)), out)
    by_field = {r.field: r for r in readings}
    assert set(by_field) == {
        "cycle_time_s", "pressure_mpa", "cycle_result", "count_total", "count_good"
    }  # reject_reason is null on a good cycle: no reading  # fmt: skip
    assert by_field["cycle_time_s"].value == pytest.approx(89.1)
    assert by_field["cycle_time_s"].unit == "s"
    assert by_field["count_total"].value == 7 and type(by_field["count_total"].value) is int
    assert by_field["cycle_result"].value == "good"
    for r in readings:
        assert r.asset == ASSET
        assert r.source_time_ns == (1_764_000_000_000 + 7 * 90_000) * 1_000_000
        assert r.received_time_ns == 42 and r.quality == Quality.GOOD
    assert out.rejects == []
    assert out.seen_assets == {ASSET: by_field["count_total"].source_time_ns}

    reject = {r.field: r.value for r in JsonConverter(config)(message(CYCLE_TOPIC, cycle(10)), out)}
    assert reject["cycle_result"] == "reject" and reject["reject_reason"] == "crack"


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "good_fields"),
    [
        (CYCLE_TOPIC, b"{not json", "malformed_json", 0),
        (CYCLE_TOPIC, b"\xff\xfe", "malformed_json", 0),
        (CYCLE_TOPIC, b"[1, 2]", "not_an_object", 0),
        ("shangbu/xinghai/plant-1/forming-shop/press-1/unknown", cycle(1), "unknown_topic", 0),
        (CYCLE_TOPIC, cycle(1, cycle_time_s="fast"), "wrong_type", 4),
        (CYCLE_TOPIC, cycle(1, count_total=12.5), "wrong_type", 4),
        (CYCLE_TOPIC, cycle(1, cycle_time_s=-1.0), "out_of_range", 4),
        (CYCLE_TOPIC, cycle(1, count_total=2**70), "out_of_range", 4),
        (CYCLE_TOPIC, cycle(1).replace(b'"pressure_mpa": 152.3', b'"pressure_mpa": NaN'),
         "not_finite", 4),
        (CYCLE_TOPIC, cycle(1).replace(b'"pressure_mpa": 152.3', b'"pressure_mpa": Infinity'),
         "not_finite", 4),
        (CYCLE_TOPIC, cycle(1).replace(b'"count_good": 1', b'"other": 1'), "missing_field", 4),
        (CYCLE_TOPIC, cycle(1).replace(b'"ts"', b'"time"'), "missing_time", 0),
        (CYCLE_TOPIC, cycle(1, ts="yesterday"), "bad_time", 0),
        ("shangbu/fushun/plant-1/forming-shop/press-1/cycle", cycle(1), "foreign_enterprise", 0),
    ],
)  # fmt: skip
def test_bad_input_is_rejected_with_a_stable_reason_and_the_rest_kept(
    config, topic: str, payload: bytes, reason: str, good_fields: int
) -> None:
    out = RecordingOutput()
    readings = JsonConverter(config)(message(topic, payload), out)
    assert [r[0] for r in out.rejects] == [reason]
    assert reason in REASONS
    assert out.rejects[0][2] == payload  # the raw message goes to the dead-letter table
    assert len(readings) == good_fields
    assert all(isinstance(r.value, str) or math.isfinite(r.value) for r in readings)


def test_patterns_records_rfc3339_scale_and_quality() -> None:
    text = """
[[source]]
type = "mqtt_json"
name = "gateway"
url = "mqtt://127.0.0.1"
  [[source.topic]]
  pattern = "plant/{enterprise}/+/{asset}/#"
  asset = "{enterprise}/plant-1/forming-shop/{asset}"
  records_path = "samples"
  time_path = "at"
  time_unit = "rfc3339"
  quality_path = "q"
    [[source.topic.field]]
    path = "p.bar"
    field = "pressure_mpa"
    unit = "MPa"
    scale = 0.1
    [[source.topic.field]]
    path = "flags.0"
    field = "interlock_ok"
    type = "bool"
"""
    config = parse_mqtt_json_source(next(parse_toml(text, "t.toml").tables("source")))
    assert config.topics[0].subscription == "plant/+/+/+/#"
    payload = json.dumps(
        {"samples": [
            {"at": "2026-11-26T01:00:00.000001+08:00", "p": {"bar": 1523}, "flags": [True],
             "q": "good"},
            {"at": "2026-11-25T17:00:00Z", "p": {"bar": 1500}, "flags": [False], "q": 2},
        ]}
    )  # fmt: skip
    out = RecordingOutput()
    readings = JsonConverter(config)(message("plant/lifeng/x/press-9/a/b", payload), out)
    assert out.rejects == []
    assert [(r.field, r.value, r.quality) for r in readings] == [
        ("pressure_mpa", pytest.approx(152.3), Quality.GOOD),
        ("interlock_ok", True, Quality.GOOD),
        ("pressure_mpa", pytest.approx(150.0), Quality.BAD),
        ("interlock_ok", False, Quality.BAD),
    ]
    # 01:00:00.000001 at +08:00 is 17:00:00.000001 UTC the day before: integer ns, no float drift
    assert readings[0].source_time_ns == readings[2].source_time_ns + 1_000
    assert readings[2].source_time_ns == 1_795_626_000 * 1_000_000_000
    assert {r.asset for r in readings} == {"lifeng/plant-1/forming-shop/press-9"}
    assert JsonConverter(config)(message("plant/lifeng/x", payload), out) == []
    assert out.reasons() == {"unknown_topic": 1}


# -- over a real broker ---------------------------------------------------------------------


def make_source(broker: Mosquitto, *, protocol: str = "5", client_id: str | None = None,
                max_inflight: int = 1000, **extra: object) -> MqttJsonSource:  # fmt: skip
    replace = {
        "mqtt://127.0.0.1:1883": broker.url,
        'protocol = "5"': f'protocol = "{protocol}"',
        "kilnworks-xinghai-presses-json": client_id or f"kw-{uuid.uuid4().hex[:8]}",
        "max_inflight = 1000": f"max_inflight = {max_inflight}\nmax_batch_messages = "
        f"{max_inflight}\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5",
    }
    config = parse_mqtt_json_source(doc_source_table("mqtt_json", replace))
    return MqttJsonSource(config, **extra)  # type: ignore[arg-type]


def wait_counts(out: RecordingOutput, n: int, what: str, timeout_s: float = 30) -> None:
    wait_until(lambda: len(set(out.values("count_total"))) >= n, timeout_s, what)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_end_to_end_over_mosquitto(mosquitto_shared: Mosquitto, protocol: str) -> None:
    source = make_source(mosquitto_shared, protocol=protocol)
    out = RecordingOutput()
    pub = publisher(mosquitto_shared.port)
    with running(source, out):
        assert source.session.subscribed.wait(10)
        publish_all(pub, [(CYCLE_TOPIC, cycle(n)) for n in range(1, 51)])
        publish_all(pub, [(STATE_TOPIC, json.dumps({"ts": 1_764_000_000_000, "state": "running",
                                                     "reason": "auto"}))])  # fmt: skip
        wait_until(lambda: len(out.values("state")) == 1 and len(out.values("count_total")) == 50,
                   20, "50 cycles and a state")  # fmt: skip
        # acks go out right after accept returned
        wait_until(lambda: source.status()["messages_acked"] == 51, 10, "51 acks")
        status = source.status()
    pub.disconnect()
    assert out.values("count_total") == list(range(1, 51))  # in order, each once
    assert out.values("state_reason") == ["auto"]
    assert status["connected"] is True and status["messages_acked"] == 51
    assert out.rejects == []


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_persistent_session_keeps_messages_while_the_agent_is_down(
    mosquitto_shared: Mosquitto, protocol: str
) -> None:
    client_id = f"kw-persist-{uuid.uuid4().hex[:6]}"
    out = RecordingOutput()
    first = make_source(mosquitto_shared, client_id=client_id, protocol=protocol)
    pub = publisher(mosquitto_shared.port)
    with running(first, out):
        assert first.session.subscribed.wait(10)
        publish_all(pub, [(CYCLE_TOPIC, cycle(1))])
        wait_counts(out, 1, "first cycle")
    # agent down: the broker queues for our session
    publish_all(pub, [(CYCLE_TOPIC, cycle(n)) for n in range(2, 202)])
    second = make_source(mosquitto_shared, client_id=client_id, protocol=protocol)
    with running(second, out):
        wait_counts(out, 201, "cycles published while the agent was down")
        assert second.session.session_present is True
    pub.disconnect()
    assert sorted(set(out.values("count_total"))) == list(range(1, 202))


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_broker_restart_loses_nothing(mosquitto: Mosquitto, protocol: str) -> None:
    """Messages in flight (delivered but not acked because the spool is slow) and messages
    queued at the broker survive a broker restart; the source reconnects by itself."""
    # A small in-flight window keeps most messages at the broker, not in the agent's memory.
    source = make_source(mosquitto, protocol=protocol, max_inflight=5)
    out = RecordingOutput()
    with running(source, out):
        assert source.session.subscribed.wait(10)
        pub = publisher(mosquitto.port)
        publish_all(pub, [(CYCLE_TOPIC, cycle(1))])
        wait_counts(out, 1, "first cycle")
        out.gate.clear()  # the spool stalls: nothing more gets acked
        publish_all(pub, [(CYCLE_TOPIC, cycle(n)) for n in range(2, 102)])
        pub.disconnect()
        pub.loop_stop()
        wait_until(lambda: source.session.counters["received"] >= 2, 10, "delivery to the agent")
        mosquitto.restart()
        out.gate.set()
        wait_until(lambda: source.session.counters["connects"] >= 2, 30, "reconnect")
        pub = publisher(mosquitto.port)
        publish_all(pub, [(CYCLE_TOPIC, cycle(n)) for n in range(102, 152)])
        wait_counts(out, 151, "every cycle after the broker restart")
        status = source.status()
    pub.disconnect()
    assert sorted(set(out.values("count_total"))) == list(range(1, 152))
    assert status["reconnects"] >= 1


@pytest.mark.integration
def test_starts_before_the_broker_and_connects_when_it_comes_up(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    source = make_source(mosquitto)
    out = RecordingOutput()
    with running(source, out):
        wait_until(lambda: source.status()["connect_failures"] >= 1, 10, "a failed first connect")
        mosquitto.start()
        assert source.session.subscribed.wait(15), source.status()
        pub = publisher(mosquitto.port)
        publish_all(pub, [(CYCLE_TOPIC, cycle(5))])
        wait_counts(out, 1, "a cycle once the broker is up")
        pub.disconnect()
    assert out.values("count_total") == [5]


@pytest.mark.integration
def test_malformed_payloads_are_counted_and_do_not_stop_the_source(mosquitto_shared) -> None:
    source = make_source(mosquitto_shared)
    out = RecordingOutput()
    pub = publisher(mosquitto_shared.port)
    with running(source, out):
        assert source.session.subscribed.wait(10)
        publish_all(pub, [
            (CYCLE_TOPIC, b"{garbage"),
            (CYCLE_TOPIC, cycle(1).replace(b"152.3", b"NaN")),
            (CYCLE_TOPIC, b""),
            (CYCLE_TOPIC, cycle(2)),
        ])  # fmt: skip
        wait_counts(out, 2, "good cycles around the bad ones")
    pub.disconnect()
    assert out.reasons() == {"malformed_json": 2, "not_finite": 1}
    assert out.values("count_total") == [1, 2]  # the NaN cycle keeps its other fields


@pytest.mark.integration
def test_output_failure_is_retried_and_nothing_is_acked_before(mosquitto_shared) -> None:
    source = make_source(mosquitto_shared)
    out = RecordingOutput()
    out.fail_next = 3
    pub = publisher(mosquitto_shared.port)
    with running(source, out):
        assert source.session.subscribed.wait(10)
        publish_all(pub, [(CYCLE_TOPIC, cycle(1))])
        wait_counts(out, 1, "the cycle after the spool recovers")
        wait_until(lambda: source.status()["messages_acked"] == 1, 10, "the ack")
        assert source.status()["accept_failures"] == 3
    pub.disconnect()


@pytest.mark.integration
async def test_an_output_that_fails_to_dead_letter_restarts_the_source_without_acking(
    mosquitto_shared: Mosquitto,
) -> None:
    class BrokenDeadLetters(RecordingOutput):
        def reject(self, source, reason, detail, raw=None) -> None:
            raise OSError("disk gone (test)")

    client_id = f"kw-broken-{uuid.uuid4().hex[:6]}"
    source = make_source(mosquitto_shared, client_id=client_id)
    pub = publisher(mosquitto_shared.port)
    task = asyncio.create_task(source.run(BrokenDeadLetters()))
    await asyncio.to_thread(source.session.subscribed.wait, 10)
    publish_all(pub, [(CYCLE_TOPIC, b"{garbage"), (CYCLE_TOPIC, cycle(1))])
    with pytest.raises(RuntimeError, match="worker stopped"):
        await asyncio.wait_for(task, 20)
    # The agent restarts the source: the broker re-sends both (nothing was acked).
    out = RecordingOutput()
    again = make_source(mosquitto_shared, client_id=client_id)
    with running(again, out):
        wait_counts(out, 1, "the cycle re-sent after the restart")
        assert out.reasons() == {"malformed_json": 1}
    pub.disconnect()


@pytest.mark.integration
def test_username_password(tmp_path) -> None:
    (tmp_path / "mq").mkdir()
    broker = Mosquitto(tmp_path / "mq", extra_config="")
    pwfile = broker.root / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "agent", "s3cret"], check=True)
    pwfile.chmod(0o600)
    broker.extra_config = f"password_file {pwfile}"
    broker.start()
    try:
        bad = make_source(broker)
        bad.session.settings = replace(bad.session.settings, username="agent", password="nope")
        out = RecordingOutput()
        with running(bad, out):
            wait_until(lambda: "refused" in str(bad.status()["last_error"]), 10, "refusal")
            assert not bad.session.connected.is_set()
        good = make_source(broker)
        good.session.settings = replace(good.session.settings, username="agent", password="s3cret")
        with running(good, out):
            assert good.session.subscribed.wait(10)
            pub = publisher(broker.port, username="agent", password="s3cret")
            publish_all(pub, [(CYCLE_TOPIC, cycle(3))])
            wait_counts(out, 1, "cycle over an authenticated connection")
            pub.disconnect()
    finally:
        broker.close()


@pytest.mark.integration
@pytest.mark.parametrize("client_cert", [False, True], ids=["server-auth", "mutual-tls"])
def test_tls_with_a_private_ca(tmp_path, client_cert: bool) -> None:
    pki = write_pki(tmp_path / "pki")
    (tmp_path / "mq").mkdir()
    tls = f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
    if client_cert:
        tls += "require_certificate true\n"
    broker = Mosquitto(tmp_path / "mq", extra_config=tls)
    broker.start()
    try:
        data = dict(doc_source_table("mqtt_json").data)
        data["url"] = f"mqtts://127.0.0.1:{broker.port}"
        data["client_id"] = f"kw-tls-{uuid.uuid4().hex[:6]}"
        data["tls"] = {"ca_file": str(pki["ca"])}
        if client_cert:
            data["tls"].update(cert_file=str(pki["client_cert"]), key_file=str(pki["client_key"]))
        config = parse_mqtt_json_source(Table(data, "t.toml", "source[0]"))
        source = MqttJsonSource(config)
        out = RecordingOutput()
        with running(source, out):
            assert source.session.subscribed.wait(10), source.status()
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-pub")
            pub.tls_set(
                ca_certs=str(pki["ca"]),
                certfile=str(pki["client_cert"]) if client_cert else None,
                keyfile=str(pki["client_key"]) if client_cert else None,
            )
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            wait_until(pub.is_connected, 10, "TLS publisher")
            publish_all(pub, [(CYCLE_TOPIC, cycle(4))])
            wait_counts(out, 1, "cycle over TLS")
            pub.disconnect()
            pub.loop_stop()
        assert out.values("count_total") == [4]
        if client_cert:  # without the client certificate the broker must refuse us
            del data["tls"]["cert_file"], data["tls"]["key_file"]
            anonymous = MqttJsonSource(parse_mqtt_json_source(Table(data, "t.toml", "s")))
            with running(anonymous, out):
                wait_until(lambda: anonymous.status()["last_error"] != "", 10, "refusal")
                assert not anonymous.session.subscribed.is_set()
    finally:
        broker.close()
