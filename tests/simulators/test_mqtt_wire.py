"""A paho client against the simulated presses on a real Mosquitto: JSON and Sparkplug B.

Fleets here have presses only (no OPC UA server), so each test starts its own in milliseconds,
on topics and a Sparkplug group of its own on the shared broker.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators import sparkplug as spb
from simulators.fleet import Fleet
from simulators.mqtt_presses import MqttOptions
from simulators.truth import read_truth
from tests.servers import Mosquitto
from tests.simulators.conftest import press_scenario, unique

pytestmark = pytest.mark.integration

JSON_PRESS = "xinghai/plant-1/forming-shop/press-1"
SPB_PRESS = "xinghai/plant-1/forming-shop/press-2"
CYCLE_KEYS = {
    "ts",
    "cycle",
    "cycle_time_s",
    "pressure_mpa",
    "result",
    "reject_reason",
    "count_total",
    "count_good",
}


class Subscriber:
    """A paho client in its own thread recording (topic, payload) in arrival order."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("no SUBACK from the broker")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t.endswith(suffix)]

    def of_type(self, kind: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(t, p) for t, p in self.messages if t.split("/")[2] == kind]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def press_fleet(
    broker: Mosquitto, tmp_path: Path, *, protocol: int = 5, speed: float = 1200
) -> Fleet:
    return Fleet(
        press_scenario(),
        speed=speed,
        mqtt=MqttOptions(url=broker.url, protocol=protocol),
        topic_root=unique("t"),
        sparkplug_group=unique("g"),
        truth_dir=tmp_path / "truth",
        seed=11,
    )


@pytest.mark.parametrize("protocol", [5, 311])
async def test_json_press_cycles_decode_and_agree_with_truth(
    mosquitto_shared: Mosquitto, tmp_path: Path, protocol: int
) -> None:
    fleet = press_fleet(mosquitto_shared, tmp_path, protocol=protocol)
    sub = Subscriber(mosquitto_shared, f"{fleet.topic_root}/#")
    try:
        async with fleet:
            topics = next(
                p for p in fleet.manifest()["mqtt"]["presses"] if p["asset"] == JSON_PRESS
            )["topics"]
            assert (
                topics["cycle"] == f"{fleet.topic_root}/xinghai/plant-1/forming-shop/press-1/cycle"
            )
            await until(lambda: len(sub.on("/press-1/cycle")) >= 12, 30, "twelve JSON cycles")
    finally:
        sub.close()
    states = [json.loads(p) for p in sub.on("/press-1/state")]
    assert states[0]["state"] == "running" and set(states[0]) == {"ts", "state", "reason"}
    cycles = [json.loads(p) for p in sub.on("/press-1/cycle")]
    prev_good = 0
    for i, c in enumerate(cycles, start=1):
        assert set(c) == CYCLE_KEYS
        assert isinstance(c["ts"], int) and c["cycle"] == i == c["count_total"]
        assert c["result"] in ("good", "reject")
        assert (c["reject_reason"] is None) == (c["result"] == "good")
        assert c["count_good"] == prev_good + (c["result"] == "good")
        prev_good = c["count_good"]
        assert c["cycle_time_s"] >= 90.0 * 0.99 and 140 < c["pressure_mpa"] < 160
    truth = {
        r["cycle"]: r for r in read_truth(fleet.truth_path(JSON_PRESS)) if r["kind"] == "cycle"
    }
    for c in cycles:
        r = truth[c["cycle"]]
        assert r["delivered"] is True and r["t_ns"] // 1_000_000 == c["ts"]
        assert (r["cycle_time_s"], r["pressure_mpa"], r["result"], r["count_good"]) == (
            c["cycle_time_s"],
            c["pressure_mpa"],
            c["result"],
            c["count_good"],
        )


def decode_all(messages: list[tuple[str, bytes]]) -> list[tuple[str, object]]:
    return [(t.split("/")[2], spb.decode(p)) for t, p in messages]


async def test_sparkplug_births_aliases_seq_rebirth_and_death(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    fleet = press_fleet(mosquitto_shared, tmp_path)
    group, node = fleet.sparkplug_group, "xinghai-forming"
    sub = Subscriber(mosquitto_shared, f"spBv1.0/{group}/#")
    try:
        async with fleet:
            await until(lambda: len(sub.of_type("DDATA")) >= 8, 30, "eight DDATA")
            # --- births
            msgs = decode_all(sub.messages[:])
            kinds = [k for k, _ in msgs]
            assert kinds[:2] == ["NBIRTH", "DBIRTH"]
            nbirth, dbirth = msgs[0][1], msgs[1][1]
            assert nbirth.seq == 0 and dbirth.seq == 1
            nm = {m.name: m for m in nbirth.metrics}
            assert nm["bdSeq"].datatype == spb.UINT64 and spb.get_value(nm["bdSeq"]) == 0
            assert nm["Node Control/Rebirth"].datatype == spb.BOOLEAN
            expected = {
                "cycle_time_s": spb.DOUBLE,
                "pressure_mpa": spb.DOUBLE,
                "cycle_result": spb.STRING,
                "reject_reason": spb.STRING,
                "count_total": spb.UINT64,
                "count_good": spb.UINT64,
                "state": spb.STRING,
                "state_reason": spb.STRING,
            }
            assert {m.name: m.datatype for m in dbirth.metrics} == expected
            alias_name = {m.alias: m.name for m in dbirth.metrics}
            assert len(alias_name) == 8
            # --- data: aliases only, seq consecutive over all messages, wrapping at 256
            seqs = [p.seq for k, p in msgs]
            assert all(b == (a + 1) % 256 for a, b in itertools.pairwise(seqs))
            ddata = [p for k, p in msgs if k == "DDATA"]
            assert all(not m.name and m.alias in alias_name for p in ddata for m in p.metrics)
            truth = {
                r["t_ns"] // 1_000_000: r
                for r in read_truth(fleet.truth_path(SPB_PRESS))
                if r["kind"] == "cycle"
            }
            checked = 0
            for p in ddata:
                values = {alias_name[m.alias]: spb.get_value(m) for m in p.metrics}
                if "count_total" in values:
                    r = truth[p.metrics[0].timestamp]
                    assert (
                        values["count_total"] == r["count_total"]
                        and values["cycle_result"] == r["result"]
                    )
                    assert values["cycle_time_s"] == r["cycle_time_s"]
                    assert values["reject_reason"] == r["reject_reason"]  # None <-> is_null
                    checked += 1
            assert checked >= 5
            # --- rebirth on NCMD
            births_before = len(sub.of_type("NBIRTH"))
            cmd = spb.encode(
                [("Node Control/Rebirth", None, spb.BOOLEAN, True, 0)], timestamp_ms=0, seq=None
            )
            sub.client.publish(f"spBv1.0/{group}/NCMD/{node}", cmd, qos=1)
            await until(
                lambda: len(sub.of_type("NBIRTH")) > births_before, 15, "NBIRTH after rebirth"
            )
            rebirth = spb.decode(sub.of_type("NBIRTH")[-1][1])
            assert (
                rebirth.seq == 0
                and spb.get_value(next(m for m in rebirth.metrics if m.name == "bdSeq")) == 0
            )
            await until(lambda: len(sub.of_type("DBIRTH")) >= 2, 15, "DBIRTH after rebirth")
            # --- network failure: the broker fires the Will, the node comes back with bdSeq + 1
            await fleet.disconnect_mqtt("xinghai", down_wall_s=0.3)
            await until(lambda: len(sub.of_type("NDEATH")) >= 1, 15, "NDEATH (Will)")
            death = spb.decode(sub.of_type("NDEATH")[0][1])
            assert spb.get_value(death.metrics[0]) == 0 and death.metrics[0].name == "bdSeq"
            await until(
                lambda: len(sub.of_type("NBIRTH")) >= births_before + 2,
                15,
                "NBIRTH after reconnect",
            )
            again = spb.decode(sub.of_type("NBIRTH")[-1][1])
            assert spb.get_value(next(m for m in again.metrics if m.name == "bdSeq")) == 1
        # --- clean stop: DDEATH then an explicit NDEATH with the current bdSeq
        await until(lambda: len(sub.of_type("NDEATH")) >= 2, 15, "NDEATH on stop")
        assert sub.of_type("DDEATH")
        assert spb.get_value(spb.decode(sub.of_type("NDEATH")[-1][1]).metrics[0]) == 1
    finally:
        sub.close()


async def test_garbage_payloads_reach_the_wire(mosquitto_shared: Mosquitto, tmp_path: Path) -> None:
    fleet = press_fleet(mosquitto_shared, tmp_path, speed=60)
    sub = Subscriber(mosquitto_shared, f"{fleet.topic_root}/#")
    sub_spb = Subscriber(mosquitto_shared, f"spBv1.0/{fleet.sparkplug_group}/DDATA/#")
    try:
        async with fleet:
            await fleet.wait_connected()
            await fleet.inject(JSON_PRESS, "garbage")
            await fleet.inject(SPB_PRESS, "garbage", kinds=["bad_protobuf", "nan"])
            await until(
                lambda: len(sub.on("/press-1/cycle")) >= 4, 15, "four garbage JSON payloads"
            )
            await until(lambda: len(sub_spb.messages) >= 2, 15, "two garbage DDATA")
    finally:
        sub.close()
        sub_spb.close()
    payloads = sub.on("/press-1/cycle")[:4]
    with pytest.raises(json.JSONDecodeError):
        json.loads(payloads[0])  # malformed
    wrong = json.loads(payloads[1])
    assert isinstance(wrong["ts"], str) and isinstance(wrong["cycle_time_s"], str)
    assert b"NaN" in payloads[2] and b"Infinity" in payloads[2]
    with pytest.raises(UnicodeDecodeError):
        payloads[3].decode()
    bad, nan = sub_spb.messages[0][1], sub_spb.messages[1][1]
    with pytest.raises(Exception):  # noqa: B017 - protobuf's DecodeError
        spb.decode(bad)
    assert math.isnan(spb.get_value(spb.decode(nan).metrics[0]))
    rows = [r for r in read_truth(fleet.truth_path(JSON_PRESS)) if r["kind"] == "fault"]
    assert rows[0]["fault"] == "garbage" and len(rows[0]["sent"]) == 4


async def test_breakdown_and_reject_burst_change_the_wire(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    fleet = press_fleet(mosquitto_shared, tmp_path, speed=900)
    sub = Subscriber(mosquitto_shared, f"{fleet.topic_root}/#")
    try:
        async with fleet:
            await until(lambda: len(sub.on("/press-1/cycle")) >= 2, 20, "cycles")
            await fleet.inject(JSON_PRESS, "press_breakdown", reason="seal_leak")
            await until(
                lambda: any(
                    json.loads(p)["state"] == "breakdown" for p in sub.on("/press-1/state")
                ),
                10,
                "breakdown state",
            )
            n = len(sub.on("/press-1/cycle"))
            # no cycle while broken down: wait a simulated ideal cycle time x 3 (0.3 s wall)
            await fleet.clock.sleep_until(fleet.clock.now_ns() + 270 * 10**9)
            assert len(sub.on("/press-1/cycle")) == n
            await fleet.inject(JSON_PRESS, "reject_burst", reject_rate=1.0)
            await fleet.clear(JSON_PRESS, "press_breakdown")
            await until(
                lambda: len(sub.on("/press-1/cycle")) >= n + 3, 20, "cycles after the repair"
            )
    finally:
        sub.close()
    states = [json.loads(p) for p in sub.on("/press-1/state")]
    down = next(s for s in states if s["state"] == "breakdown")
    assert down["reason"] == "seal_leak"
    after = [json.loads(p) for p in sub.on("/press-1/cycle")[n:]]
    assert after and all(c["result"] == "reject" for c in after)


async def test_clock_skew_shifts_wire_timestamps_and_truth_says_by_how_much(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    fleet = press_fleet(mosquitto_shared, tmp_path, speed=900)
    sub = Subscriber(mosquitto_shared, f"{fleet.topic_root}/#")
    try:
        async with fleet:
            await until(lambda: len(sub.on("/press-1/cycle")) >= 1, 20, "a cycle")
            await fleet.inject(JSON_PRESS, "clock_skew", offset_s=-7200)
            n = len(sub.on("/press-1/cycle"))
            await until(lambda: len(sub.on("/press-1/cycle")) >= n + 2, 20, "skewed cycles")
            await fleet.clear(JSON_PRESS, "clock_skew")
            m = len(sub.on("/press-1/cycle"))
            await until(lambda: len(sub.on("/press-1/cycle")) >= m + 1, 20, "a cycle after the fix")
    finally:
        sub.close()
    truth = {
        r["cycle"]: r for r in read_truth(fleet.truth_path(JSON_PRESS)) if r["kind"] == "cycle"
    }
    wire = [json.loads(p) for p in sub.on("/press-1/cycle")]
    skewed = [c for c in wire if truth[c["cycle"]].get("skew_ns")]
    assert len(skewed) >= 2
    for c in skewed:
        r = truth[c["cycle"]]
        assert r["skew_ns"] == -7200 * 10**9 and c["ts"] == (r["t_ns"] - 7200 * 10**9) // 1_000_000
    last = wire[-1]
    assert (
        "skew_ns" not in truth[last["cycle"]]
        and last["ts"] == truth[last["cycle"]]["t_ns"] // 1_000_000
    )


async def test_presses_come_back_after_the_broker_restarts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    fleet = press_fleet(mosquitto, tmp_path, speed=600)
    async with fleet:
        await fleet.wait_connected(10)
        node = fleet.edge_nodes["xinghai"]
        assert node.bd_seq == 0
        mosquitto.restart()  # blocks the loop a moment: the presses catch up afterwards
        restarted_ns = fleet.clock.now_ns()
        sub = Subscriber(mosquitto, f"spBv1.0/{fleet.sparkplug_group}/#")
        try:
            await until(
                lambda: len(sub.of_type("NBIRTH")) >= 1, 20, "NBIRTH after the broker restart"
            )
            birth = spb.decode(sub.of_type("NBIRTH")[0][1])
            assert spb.get_value(next(m for m in birth.metrics if m.name == "bdSeq")) == 1
            await until(lambda: len(sub.of_type("DDATA")) >= 2, 20, "data again")
        finally:
            sub.close()

        def delivered_after(t_ns: int) -> bool:
            rows = read_truth(fleet.truth_path(JSON_PRESS))
            return any(r["kind"] == "cycle" and r["delivered"] and r["t_ns"] > t_ns for r in rows)

        await until(lambda: delivered_after(restarted_ns), 20, "a JSON cycle delivered again")
