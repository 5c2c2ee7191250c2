"""End to end with the simulated presses: what the simulators published is what the MQTT
sources delivered, value for value, checked against the simulator's ground-truth files."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from edge_agent.sources.mqtt_json import MqttJsonSource, parse_mqtt_json_source
from edge_agent.sources.sparkplug import SparkplugSource, parse_sparkplug_source
from simulators.fleet import Fleet
from simulators.scenario import load_scenario
from tests.edge_agent.mqtt_support import RecordingOutput, doc_source_table
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

JSON_PRESS = "xinghai/plant-1/forming-shop/press-1"
SPB_PRESS = "xinghai/plant-1/forming-shop/press-2"


def truth(path: Path | None, kind: str) -> list[dict]:
    assert path is not None and path.exists(), f"no ground truth at {path}"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [x for x in lines if x["kind"] == kind and x.get("delivered", True)]


async def until(predicate, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_simulated_presses_arrive_value_for_value(mosquitto: Mosquitto, tmp_path) -> None:
    tag = uuid.uuid4().hex[:6]
    json_source = MqttJsonSource(
        parse_mqtt_json_source(
            doc_source_table(
                "mqtt_json",
                {"mqtt://127.0.0.1:1883": mosquitto.url,
                 "kilnworks-xinghai-presses-json": f"kw-e2e-json-{tag}"},
            )
        )
    )  # fmt: skip
    spb_source = SparkplugSource(
        parse_sparkplug_source(
            doc_source_table(
                "sparkplug",
                {"mqtt://127.0.0.1:1883": mosquitto.url,
                 "kilnworks-xinghai-sparkplug": f"kw-e2e-spb-{tag}"},
            )
        )
    )  # fmt: skip
    out = RecordingOutput()
    tasks = [asyncio.create_task(s.run(out)) for s in (json_source, spb_source)]
    try:
        await until(
            lambda: all(s.session.subscribed.is_set() for s in (json_source, spb_source)),
            10, "both sources subscribed",
        )  # fmt: skip
        # The presses of the mini scenario only: the kilns (OPC UA) are another source's test.
        presses_only = dataclasses.replace(load_scenario("mini"), kilns=())
        fleet = Fleet(
            presses_only, speed=3600, opcua_base_port=0, security=("none",), mqtt_url=mosquitto.url,
            truth_dir=tmp_path / "truth", seed=11, scheduled_faults=False,
        )  # fmt: skip
        async with fleet:
            await fleet.wait_connected(10)
            # 1 wall second = 1 simulated hour: ~40 press-1 cycles, ~120 press-2 cycles
            await until(lambda: len(out.values("count_total", SPB_PRESS)) >= 60, 30, "press-2")
            await fleet.inject(JSON_PRESS, "garbage", kinds=["malformed"])
            await until(lambda: len(out.values("count_total", JSON_PRESS)) >= 20, 30, "press-1")
            json_truth_path = fleet.truth_path(JSON_PRESS)
            spb_truth_path = fleet.truth_path(SPB_PRESS)
        # the fleet stopped: its edge node sent NDEATH; wait for the last messages to land
        json_cycles = truth(json_truth_path, "cycle")
        spb_cycles = truth(spb_truth_path, "cycle")
        await until(
            lambda: all(
                set(out.values("count_total", a)) >= {c["count_total"] for c in cs}
                for a, cs in ((JSON_PRESS, json_cycles), (SPB_PRESS, spb_cycles))
            )
            and False in out.values("sparkplug_online", SPB_PRESS),
            20, "every published cycle and the NDEATH",
        )  # fmt: skip
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    for asset, cycles in ((JSON_PRESS, json_cycles), (SPB_PRESS, spb_cycles)):
        got = {
            (r.source_time_ns, r.field): r.value
            for r in out.readings
            if r.asset == asset and r.field in ("count_total", "cycle_time_s", "cycle_result")
        }
        assert cycles, f"the simulator published no cycles for {asset}"
        for c in cycles:
            t_ns = c["t_ns"] // 1_000_000 * 1_000_000  # the wire carries milliseconds
            assert got[(t_ns, "count_total")] == c["count_total"], (asset, c)
            assert got[(t_ns, "cycle_time_s")] == pytest.approx(c["cycle_time_s"], abs=1e-9)
            assert got[(t_ns, "cycle_result")] == c["result"]
    assert out.reasons()["malformed_json"] >= 1
    assert set(out.reasons()) <= {"malformed_json"}, out.rejects[:5]


async def test_broker_restart_mid_run_loses_nothing_the_simulator_delivered(
    mosquitto: Mosquitto, tmp_path
) -> None:
    """Mosquitto restarts while presses publish: the sources reconnect by themselves and every
    cycle the simulator's broker accepted reaches the Output; Sparkplug re-births cleanly."""
    tag = uuid.uuid4().hex[:6]
    sources = [
        MqttJsonSource(parse_mqtt_json_source(doc_source_table("mqtt_json", {
            "mqtt://127.0.0.1:1883": mosquitto.url,
            "kilnworks-xinghai-presses-json": f"kw-rs-json-{tag}",
            "max_inflight = 1000": "max_inflight = 1000\nreconnect_min_s = 0.1\n"
            "reconnect_max_s = 0.5",
        }))),
        SparkplugSource(parse_sparkplug_source(doc_source_table("sparkplug", {
            "mqtt://127.0.0.1:1883": mosquitto.url,
            "kilnworks-xinghai-sparkplug": f"kw-rs-spb-{tag}",
            'protocol = "3.1.1"': 'protocol = "3.1.1"\nreconnect_min_s = 0.1\n'
            "reconnect_max_s = 0.5",
        }))),
    ]  # fmt: skip
    out = RecordingOutput()
    tasks = [asyncio.create_task(s.run(out)) for s in sources]
    try:
        await until(lambda: all(s.session.subscribed.is_set() for s in sources), 10, "subscribed")
        presses_only = dataclasses.replace(load_scenario("mini"), kilns=())
        fleet = Fleet(
            presses_only, speed=3600, opcua_base_port=0, security=("none",), mqtt_url=mosquitto.url,
            truth_dir=tmp_path / "truth", seed=12, scheduled_faults=False,
        )  # fmt: skip
        async with fleet:
            await fleet.wait_connected(10)
            await until(lambda: len(out.values("count_total", SPB_PRESS)) >= 30, 30, "press-2")
            await asyncio.to_thread(mosquitto.restart)
            await until(lambda: all(s.session.subscribed.is_set() for s in sources), 30, "back")
            before = len(out.values("count_total", SPB_PRESS))
            await until(
                lambda: len(out.values("count_total", SPB_PRESS)) >= before + 30, 30, "after"
            )
            paths = fleet.truth_path(JSON_PRESS), fleet.truth_path(SPB_PRESS)
        cycles = {JSON_PRESS: truth(paths[0], "cycle"), SPB_PRESS: truth(paths[1], "cycle")}
        await until(
            lambda: all(
                set(out.values("count_total", a)) >= {c["count_total"] for c in cs}
                for a, cs in cycles.items()
            ),
            20, "every cycle the simulator delivered",
        )  # fmt: skip
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(s.status()["reconnects"] >= 1 for s in sources)
    assert "data_before_birth" not in out.reasons(), [r[:2] for r in out.rejects]


async def test_whole_agent_mqtt_presses_into_influxdb_value_for_value(
    mosquitto: Mosquitto, influx_database: str, tmp_path
) -> None:
    """The full chain: simulated presses -> Mosquitto -> the agent (config generated from the
    simulator's manifest, both MQTT sources) -> spool -> InfluxDB 1.x; every cycle the
    simulator delivered is in InfluxDB with its source time and exact value."""
    from edge_agent.config import parse_agent_text
    from edge_agent.manifest import config_from_manifest
    from edge_agent.runtime import Agent
    from ingest.stores import open_store

    presses_only = dataclasses.replace(load_scenario("mini"), kilns=())
    fleet = Fleet(
        presses_only, speed=3600, opcua_base_port=0, security=("none",), mqtt_url=mosquitto.url,
        truth_dir=tmp_path / "truth", seed=13, scheduled_faults=False,
    )  # fmt: skip
    manifest = fleet.manifest()
    text = config_from_manifest(
        manifest, store_url=influx_database, state_dir=str(tmp_path / "agent"), health_listen=""
    )
    agent = Agent(parse_agent_text(text, str(tmp_path / "agent.toml")))
    await asyncio.to_thread(agent.start)
    try:
        await until(
            lambda: all(s.session.subscribed.is_set() for s in agent.sources),
            15, "the agent's MQTT sources",
        )  # fmt: skip
        async with fleet:
            await fleet.wait_connected(10)
            await asyncio.sleep(1.0)  # ~1 simulated hour of press cycles
            paths = {a: fleet.truth_path(a) for a in (JSON_PRESS, SPB_PRESS)}
        cycles = {a: truth(p, "cycle") for a, p in paths.items()}
        store = open_store(influx_database)
        try:

            def stored(asset: str, field: str) -> dict[int, object]:
                rows = store.readings(asset, field, 0, 2**62)
                return {r.source_time_ns: r.value for r in rows}

            def complete() -> bool:
                # by source time: Sparkplug births add count_total points of their own
                for a, cs in cycles.items():
                    want = {c["t_ns"] // 1_000_000 * 1_000_000 for c in cs}
                    for f in ("count_total", "cycle_time_s"):
                        if not want <= set(stored(a, f)):
                            return False
                return True

            await until(complete, 30, "every cycle in InfluxDB")
            for asset, cs in cycles.items():
                assert cs, f"no cycles published for {asset}"
                totals, times = stored(asset, "count_total"), stored(asset, "cycle_time_s")
                for c in cs:
                    t_ns = c["t_ns"] // 1_000_000 * 1_000_000
                    assert totals[t_ns] == c["count_total"], (asset, c)
                    assert times[t_ns] == pytest.approx(c["cycle_time_s"], abs=1e-9)
        finally:
            store.close()
    finally:
        await asyncio.to_thread(agent.stop)
