"""Test helpers for the MQTT sources: a recording Output, a publisher, a Sparkplug edge node.

The edge node emulator speaks Sparkplug B the way a third-party node would (births with
aliases, seq 0..255, bdSeq in the Will, answering ``Node Control/Rebirth``); it encodes with
the agent's own payload class, which is fine here because the wire itself is what we test.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.config import Table, parse_toml
from core.reading import Reading
from edge_agent.sources.sparkplug_b import DataType, Payload, decode_payload, set_metric_value
from tests.servers import wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "edge-agent-mqtt.md"


def doc_source_table(kind: str, replace: dict[str, str] | None = None) -> Table:
    """The ``[[source]]`` sample of ``type = kind`` from docs/edge-agent-mqtt.md (the doc's
    samples are tested, so they cannot rot)."""
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```toml\n(.*?)```", text, flags=re.S):
        if f'type = "{kind}"' in block:
            for old, new in (replace or {}).items():
                block = block.replace(old, new)
            return next(parse_toml(block, str(DOC)).tables("source"))
    raise AssertionError(f"no toml block with type = {kind!r} in {DOC}")


class RecordingOutput:
    """An Output at the seam: keeps what it is given. ``gate`` (cleared) makes ``accept`` block,
    ``fail_next`` makes the next n calls raise, as a full spool would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.readings: list[Reading] = []
        self.rejects: list[tuple[str, str, bytes | str | None]] = []
        self.seen_assets: dict[str, int] = {}
        self.accept_calls = 0
        self.fail_next = 0
        self.gate = threading.Event()
        self.gate.set()

    def accept(self, source: str, readings: list[Reading]) -> None:
        self.gate.wait(30)
        with self.lock:
            self.accept_calls += 1
            if self.fail_next:
                self.fail_next -= 1
                raise OSError("spool full (test)")
            self.readings.extend(readings)

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None = None) -> None:
        with self.lock:
            self.rejects.append((reason, detail, raw))

    def seen(self, source: str, asset: str, time_ns: int) -> None:
        with self.lock:
            self.seen_assets[asset] = time_ns

    # queries
    def values(self, field: str, asset: str | None = None) -> list[object]:
        with self.lock:
            return [
                r.value
                for r in self.readings
                if r.field == field and (asset is None or r.asset == asset)
            ]

    def reasons(self) -> Counter[str]:
        with self.lock:
            return Counter(r[0] for r in self.rejects)


@contextlib.contextmanager
def running(source: object, output: RecordingOutput) -> Iterator[None]:
    """Run an async source's ``run`` in a thread with its own event loop; cancel on exit."""
    loop = asyncio.new_event_loop()
    task: asyncio.Task[None] | None = None
    ready = threading.Event()

    def main() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(source.run(output))  # type: ignore[attr-defined]
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
        thread.join(30)
        assert not thread.is_alive(), "source did not stop on cancellation"


def publisher(port: int, protocol: int = mqtt.MQTTv5, **kwargs: object) -> mqtt.Client:
    """A connected paho client (loop running) for publishing test messages."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=protocol
    )
    if kwargs.get("username"):
        client.username_pw_set(str(kwargs["username"]), str(kwargs.get("password", "")))
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_until(client.is_connected, 10, "test publisher to connect")
    return client


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes | str]], qos: int = 1) -> None:
    infos = [client.publish(t, p, qos=qos) for t, p in messages]
    for info in infos:
        info.wait_for_publish(10)


class Subscriber:
    """Records every message on a filter (e.g. to observe NCMDs sent by the agent)."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}"
        )
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscriber did not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class EdgeNode:
    """A Sparkplug B edge node with devices, publishing over a real broker.

    ``devices`` maps device id -> {metric name: DataType}; aliases are numbered from
    ``alias_base`` (change it before a rebirth to prove the host re-learns them).
    """

    def __init__(
        self,
        port: int,
        group: str,
        node_id: str,
        devices: dict[str, dict[str, DataType]],
        *,
        protocol: int = mqtt.MQTTv311,
        alias_base: int = 1,
    ) -> None:
        self.port, self.group, self.node_id = port, group, node_id
        self.devices = devices
        self.alias_base = alias_base
        self.bd_seq = 0
        self.seq = 0
        self.lock = threading.Lock()
        self.rebirths = 0
        self.aliases: dict[tuple[str, str], int] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edge-{node_id}-{uuid.uuid4().hex[:6]}",
            protocol=protocol,
        )  # fmt: skip
        self.client.on_message = self._on_message
        self.client.will_set(self.topic("NDEATH"), self._death_payload(), qos=1)
        self.client.on_connect = lambda c, *a: c.subscribe(self.topic("NCMD"), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "edge node to connect")

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"spBv1.0/{self.group}/{kind}/{self.node_id}"
        return f"{base}/{device}" if device else base

    def _death_payload(self) -> bytes:
        p = Payload(timestamp=0)
        set_metric_value(p.metrics.add(name="bdSeq"), DataType.UINT64, self.bd_seq)
        return p.SerializeToString()

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def _send(self, topic: str, payload: Payload) -> None:
        self.client.publish(topic, payload.SerializeToString(), qos=1).wait_for_publish(10)

    def birth(
        self, values: dict[str, dict[str, object]] | None = None, ts_ms: int = 1_700_000_000_000
    ) -> None:
        """NBIRTH (seq 0, bdSeq) then a DBIRTH per device, with current values."""
        with self.lock:
            self.seq = 0
            self.aliases = {}
            p = Payload(timestamp=ts_ms, seq=self._next_seq())
            set_metric_value(p.metrics.add(name="bdSeq"), DataType.UINT64, self.bd_seq)
            set_metric_value(p.metrics.add(name="Node Control/Rebirth"), DataType.BOOLEAN, False)
            self._send(self.topic("NBIRTH"), p)
            alias = self.alias_base
            for device, metrics in self.devices.items():
                p = Payload(timestamp=ts_ms, seq=self._next_seq())
                for name, dt in metrics.items():
                    self.aliases[(device, name)] = alias
                    m = p.metrics.add(name=name, alias=alias, timestamp=ts_ms)
                    value = (values or {}).get(device, {}).get(name)
                    if value is None:
                        m.datatype = int(dt)
                        m.is_null = True
                    else:
                        set_metric_value(m, dt, value)  # type: ignore[arg-type]
                    alias += 1
                self._send(self.topic("DBIRTH", device), p)

    def ddata(
        self, device: str, values: dict[str, object], ts_ms: int, *, skip_seq: int = 0
    ) -> None:
        """DDATA with aliases only; ``skip_seq`` > 0 leaves a gap (as if messages were lost)."""
        with self.lock:
            self.seq = (self.seq + skip_seq) % 256
            p = Payload(timestamp=ts_ms, seq=self._next_seq())
            for name, value in values.items():
                m = p.metrics.add(alias=self.aliases[(device, name)], timestamp=ts_ms)
                set_metric_value(m, self.devices[device][name], value)  # type: ignore[arg-type]
                m.ClearField("datatype")  # DATA carries aliases and values only
            self._send(self.topic("DDATA", device), p)

    def ndeath(self) -> None:
        self._send(self.topic("NDEATH"), Payload.FromString(self._death_payload()))

    def _on_message(self, client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        payload = decode_payload(message.payload)
        for m in payload.metrics:
            if m.name == "Node Control/Rebirth" and m.boolean_value:
                self.rebirths += 1
                self.alias_base += 100  # new aliases: the host must re-learn them
                threading.Thread(target=self.birth, daemon=True).start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_pki(directory: Path) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate (CN
    ``kilnworks-agent``), both signed by the CA; PEM files. Keys: ca, server_cert, server_key,
    client_cert, client_key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kilnworks test CA")])

    def builder(subject: x509.Name, public_key: object) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_name).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )  # fmt: skip

    ca = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]), key.public_key())
        if san:
            loopback = ipaddress.ip_address("127.0.0.1")
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(loopback)]), False)
        cert = (
            b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
            .add_extension(aki, False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
    }
    files["server_cert"], files["server_key"] = leaf(
        "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, True
    )
    files["client_cert"], files["client_key"] = leaf(
        "kilnworks-agent", ExtendedKeyUsageOID.CLIENT_AUTH, False
    )
    paths = {}
    for name, data in files.items():
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


def _agent_process(argv: list[str]) -> None:
    """``python -m tests.edge_agent.mqtt_support BROKER_URL CLIENT_ID SPOOL_PATH``: the JSON
    source of the docs sample into the agent's real Output and Spool, until killed. Prints
    ``ready`` once subscribed (the kill -9 test runs this as a child process)."""
    import sys

    from prometheus_client import CollectorRegistry

    from edge_agent.config import GuardConfig
    from edge_agent.guard import Guard
    from edge_agent.health import AgentMetrics
    from edge_agent.runtime import AgentOutput
    from edge_agent.sources.mqtt_json import MqttJsonSource, parse_mqtt_json_source
    from ingest.spool import Spool

    url, client_id, spool_path = argv
    table = doc_source_table(
        "mqtt_json",
        {
            "mqtt://127.0.0.1:1883": url,
            "kilnworks-xinghai-presses-json": client_id,
            "max_inflight = 1000": "max_inflight = 10\nmax_batch_messages = 10",
        },
    )
    source = MqttJsonSource(parse_mqtt_json_source(table))
    spool = Spool(spool_path)
    output = AgentOutput(spool, Guard(GuardConfig(max_past_s=0)), AgentMetrics(CollectorRegistry()))

    async def main() -> None:
        task = asyncio.create_task(source.run(output))
        while not source.session.subscribed.is_set():
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await task

    asyncio.run(main())
    sys.exit(0)


if __name__ == "__main__":
    import sys

    _agent_process(sys.argv[1:])
