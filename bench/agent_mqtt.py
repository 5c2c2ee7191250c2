"""Benchmark: press cycles over MQTT (JSON) through the agent's source into the durable spool.

Each run starts its own Mosquitto (tests.servers, a temp dir, a free loopback port) and, for
every consumer, queues the same ``--messages`` press-cycle messages (QoS 1, 6 readings each)
in a persistent session *before* the consumer connects, so every consumer drains an identical
backlog and the publisher's speed does not enter the figure. Consumers, in the same run:

* ``raw_paho``: the baseline - a bare paho-mqtt subscriber (v2 API, MQTT 5, QoS 1, automatic
  PUBACK, the same Receive Maximum as the agent) that only counts messages;
* ``agent_spool``: ``MqttJsonSource`` (JSON mapping, manual acks after durability) into the
  agent's real Output (``edge_agent.runtime.AgentOutput``: guard + ``ingest.spool.Spool``, SQLite
  WAL with synchronous=FULL, one fsync per group of messages);
* ``agent_null``: the same source into an Output that drops readings (the source's own cost);
* ``agent_influx`` (``--influx``): the spool path plus the forwarder into a real InfluxDB 1.x,
  timed until every reading is written there.

Reported: messages/s and readings/s per consumer and ``ratio_spool_vs_raw`` (the issue's target
is >= 0.5). ``--quick`` uses a small backlog. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from core.config import parse_toml  # noqa: E402
from edge_agent.guard import Guard  # noqa: E402
from edge_agent.health import AgentMetrics  # noqa: E402
from edge_agent.runtime import AgentOutput  # noqa: E402
from edge_agent.sources.mqtt_json import MqttJsonSource, parse_mqtt_json_source  # noqa: E402
from ingest.spool import Spool  # noqa: E402
from ingest.stores import open_store  # noqa: E402
from ingest.writer import Forwarder  # noqa: E402
from tests.servers import InfluxDB, Mosquitto, wait_until  # noqa: E402

TOPIC = "shangbu/xinghai/plant-1/forming-shop/press-1/cycle"
RECEIVE_MAXIMUM = 4000  # = the max_inflight of the source in CONFIG


CONFIG = """
[[source]]
type = "mqtt_json"
name = "bench"
url = "{url}"
client_id = "{client_id}"
protocol = "5"
max_inflight = 4000
max_batch_messages = 1000
  [[source.topic]]
  pattern = "shangbu/{{enterprise}}/{{site}}/{{line}}/{{asset}}/cycle"
  time_path = "ts"
  time_unit = "ms"
    [[source.topic.field]]
    path = "cycle_time_s"
    unit = "s"
    type = "float"
    [[source.topic.field]]
    path = "pressure_mpa"
    unit = "MPa"
    type = "float"
    [[source.topic.field]]
    path = "result"
    field = "cycle_result"
    type = "str"
    [[source.topic.field]]
    path = "reject_reason"
    type = "str"
    [[source.topic.field]]
    path = "count_total"
    type = "int"
    [[source.topic.field]]
    path = "count_good"
    type = "int"
"""


def payload(n: int, t0_ms: int) -> bytes:
    return json.dumps(
        {
            "ts": t0_ms + n * 1000,
            "cycle": n,
            "cycle_time_s": 88.0 + (n % 17) / 10,
            "pressure_mpa": 150.0 + (n % 11) / 10,
            "result": "good",
            "reject_reason": "none",
            "count_total": n,
            "count_good": n,
        }
    ).encode()


def queue_backlog(broker: Mosquitto, client_id: str, messages: list[bytes]) -> None:
    """Create the persistent session ``client_id`` with its subscription, leave, and publish
    the backlog so the broker holds it for that session."""
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    done = threading.Event()
    sub.on_subscribe = lambda *a: done.set()
    sub.on_connect = lambda c, *a: c.subscribe("shangbu/+/+/+/+/cycle", qos=1)
    sub.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    sub.loop_start()
    assert done.wait(10), "subscription"
    sub.disconnect()
    sub.loop_stop()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    infos = [pub.publish(TOPIC, m, qos=1) for m in messages]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def run_raw(broker: Mosquitto, client_id: str, n: int) -> float:
    count = 0
    finished = threading.Event()

    def on_message(_c, _u, _m) -> None:
        nonlocal count
        count += 1
        if count >= n:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    # The same Receive Maximum as the agent's max_inflight: with paho's default (65535) the
    # broker floods the client and the bare subscriber gets *slower*, which would flatter us.
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    start = time.perf_counter()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    assert finished.wait(600), f"raw subscriber got {count}/{n}"
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


class NullOutput:
    def accept(self, source, readings) -> None:
        pass

    def reject(self, source, reason, detail, raw=None) -> None:
        raise AssertionError(f"bench payload rejected: {reason} {detail}")

    def seen(self, source, asset, time_ns) -> None:
        pass


def run_agent(broker: Mosquitto, client_id: str, n: int, output) -> tuple[float, int]:
    table = next(parse_toml(CONFIG.format(url=broker.url, client_id=client_id)).tables("source"))
    source = MqttJsonSource(parse_mqtt_json_source(table))
    loop = asyncio.new_event_loop()
    task = loop.create_task(source.run(output))
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])))
    start = time.perf_counter()
    thread.start()
    wait_until(lambda: source.session.counters["acked"] >= n, 600, "agent to ack the backlog")
    elapsed = time.perf_counter() - start
    loop.call_soon_threadsafe(task.cancel)
    thread.join(30)
    return elapsed, source.session.counters["readings"]


def run_influx(broker: Mosquitto, cid: str, n: int, spool_path: Path, influx: InfluxDB,
               database: str) -> tuple[float, int]:  # fmt: skip
    """Source -> AgentOutput -> Spool -> Forwarder -> InfluxDB 1.x; timed until every reading
    is written to InfluxDB (the forwarder's count), not just spooled."""
    spool = Spool(spool_path)
    store = open_store(influx.store_url(database))
    forwarder = Forwarder(spool, store, name="bench-forwarder")
    forwarder.start()
    output = AgentOutput(spool, Guard(), AgentMetrics(CollectorRegistry()))
    table = next(parse_toml(CONFIG.format(url=broker.url, client_id=cid)).tables("source"))
    source = MqttJsonSource(parse_mqtt_json_source(table))
    loop = asyncio.new_event_loop()
    task = loop.create_task(source.run(output))
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])))
    start = time.perf_counter()
    thread.start()
    wait_until(lambda: source.session.counters["acked"] >= n, 600, "agent to ack the backlog")
    readings = source.session.counters["readings"]
    wait_until(lambda: forwarder.counters["forwarded"] >= readings, 600, "InfluxDB to have it all")
    elapsed = time.perf_counter() - start
    loop.call_soon_threadsafe(task.cancel)
    thread.join(30)
    forwarder.stop(drain=True)
    spool.close()
    store.close()
    return elapsed, readings


def one_round(
    broker: Mosquitto,
    work: Path,
    messages: list[bytes],
    order: list[str],
    tag: str,
    influx: InfluxDB | None = None,
) -> dict[str, dict[str, float]]:
    n = len(messages)
    out: dict[str, dict[str, float]] = {}
    for consumer in order:
        cid = f"bench-{consumer}-{tag}-{uuid.uuid4().hex[:6]}"
        queue_backlog(broker, cid, messages)
        if consumer == "raw_paho":
            seconds = run_raw(broker, cid, n)
            out[consumer] = {"seconds": seconds, "messages_per_s": n / seconds}
        elif consumer == "agent_spool":
            spool = Spool(work / f"spool-{cid}" / "spool.db")
            output = AgentOutput(spool, Guard(), AgentMetrics(CollectorRegistry()))
            seconds, readings = run_agent(broker, cid, n, output)
            depth = spool.depth()
            spool.close()
            out[consumer] = {
                "seconds": seconds,
                "messages_per_s": n / seconds,
                "readings_per_s": readings / seconds,
                "readings": readings,
                "spool_depth": depth,
            }
        elif consumer == "agent_influx":
            assert influx is not None
            database = influx.create_database(f"bench_{uuid.uuid4().hex[:8]}")
            seconds, readings = run_influx(
                broker, cid, n, work / f"spool-{cid}" / "spool.db", influx, database
            )
            out[consumer] = {
                "seconds": seconds,
                "messages_per_s": n / seconds,
                "readings_per_s": readings / seconds,
            }
        else:
            seconds, readings = run_agent(broker, cid, n, NullOutput())
            out[consumer] = {
                "seconds": seconds,
                "messages_per_s": n / seconds,
                "readings_per_s": readings / seconds,
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small backlog (CI smoke run)")
    parser.add_argument("--messages", type=int, default=None, help="backlog size per consumer")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (median)")
    parser.add_argument(
        "--influx", action="store_true", help="also time it onwards into InfluxDB 1.x (influxd)"
    )
    args = parser.parse_args(argv)
    n = args.messages or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 3)
    t0_ms = time.time_ns() // 1_000_000 - n * 1000  # recent: the guard refuses old times
    messages = [payload(i, t0_ms) for i in range(1, n + 1)]
    work = Path(tempfile.mkdtemp(prefix="kilnworks-bench-mqtt-"))
    (work / "mosquitto").mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    consumers = ["raw_paho", "agent_spool", "agent_null"]
    influx = None
    if args.influx:
        consumers.append("agent_influx")
        (work / "influxdb").mkdir()
        influx = InfluxDB(work / "influxdb")
        influx.start()
    per_round = []
    try:
        for r in range(rounds):
            # Rotate the order so a slow phase of the shared machine hits each consumer alike.
            k = r % len(consumers)
            order = consumers[k:] + consumers[:k]
            per_round.append(one_round(broker, work, messages, order, str(r), influx))
    finally:
        broker.close()
        if influx is not None:
            influx.close()
        shutil.rmtree(work, ignore_errors=True)
    results = {}
    for c in consumers:
        rates = sorted(x[c]["messages_per_s"] for x in per_round)
        results[c] = {"messages_per_s_median": statistics.median(rates), "messages_per_s": rates}
    per_msg = per_round[0]["agent_spool"]["readings"] / n
    for c in consumers:
        results[c]["readings_per_s_median"] = results[c]["messages_per_s_median"] * per_msg
    ratios = [
        x["agent_spool"]["messages_per_s"] / x["raw_paho"]["messages_per_s"] for x in per_round
    ]
    null_ratios = [
        x["agent_null"]["messages_per_s"] / x["raw_paho"]["messages_per_s"] for x in per_round
    ]
    extra = {}
    if args.influx:
        extra["ratio_influx_vs_raw_median"] = statistics.median(
            x["agent_influx"]["messages_per_s"] / x["raw_paho"]["messages_per_s"] for x in per_round
        )
    print(
        json.dumps(
            {
                "benchmark": "agent_mqtt",
                "messages_per_consumer": n,
                "rounds": rounds,
                "readings_per_message": per_msg,
                "results": results,
                "ratio_spool_vs_raw_median": statistics.median(ratios),
                "ratio_spool_vs_raw_per_round": ratios,
                "ratio_null_vs_raw_median": statistics.median(null_ratios),
                "target_ratio_spool_vs_raw": 0.5,
                **extra,
                "spool_lost_nothing": all(
                    x["agent_spool"]["spool_depth"] == n * per_msg for x in per_round
                ),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
