"""The agent runtime with its real parts: OPC UA server -> source -> guard -> spool -> forwarder ->
embedded SQLite store, plus /healthz and /metrics over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import pytest
from asyncua import ua

from edge_agent.config import parse_agent_text
from edge_agent.runtime import Agent
from ingest.spool import Spool
from ingest.stores import open_store
from tests.edge_agent.kiln_server import KilnServer, wait_for

pytestmark = pytest.mark.integration

T0 = (time.time_ns() // 10**9 + 3600) * 10**9  # see test_opcua_source.py


def agent_toml(server: KilnServer, tmp, *, health: str = "127.0.0.1:0", guard: str = "") -> str:
    nodes = "".join(
        f"""
  [[source.node]]
  node_id = "{server.node_id_text(f)}"
  asset = "{server.asset}"
  field = "{f}"
"""
        for f in server.fields()
    )
    return f"""
[agent]
enterprise = "{server.enterprise}"
site = "plant-1"
state_dir = "{tmp / "state"}"

[spool]
path = "{tmp / "state" / "spool.db"}"

[output]
store_url = "sqlite:///{tmp / "store.db"}"

[health]
listen = "{health}"

[guard]
{guard}

[[source]]
type = "opcua"
name = "xinghai-kilns"
endpoint = "{server.endpoint}"
publishing_interval_ms = 20
sampling_interval_ms = 0
queue_size = 1000
reconnect_min_s = 0.05
reconnect_max_s = 0.5
{nodes}
"""


async def test_agent_delivers_into_the_store_and_reports_health(tmp_path):
    server = KilnServer(tmp_path)
    await server.start()
    config = parse_agent_text(
        agent_toml(server, tmp_path, guard="max_future_s = 7200.0"), "agent.toml"
    )
    agent = Agent(config)
    await asyncio.to_thread(agent.start)
    try:
        await wait_for(lambda: agent.source_status()["xinghai-kilns"]["connected"], 20, "connect")
        for i in range(30):
            await server.publish("zone1_tc1_temperature_c", 900.0 + i, T0 + i * 10**6)
            await server.publish("state", "heating" if i % 2 else "soaking", T0 + i * 10**6)
        # bad input: NaN (guard) and a clock 3 h ahead (guard allows 2 h)
        await server.publish("zone1_tc2_temperature_c", float("nan"), T0 + 5 * 10**6, record=False)
        await server.publish("zone1_tc2_temperature_c", 905.0, T0 + 3 * 3600 * 10**9, record=False)
        asset = server.asset

        def stored(field: str):
            # a fresh store object each time: the embedded store caches its series ids
            store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
            try:
                return store.readings(asset, field, T0, T0 + 10**12)
            finally:
                store.close()

        await wait_for(
            lambda: len(stored("zone1_tc1_temperature_c")) == 30 and len(stored("state")) == 30,
            30,
            "readings in the store",
        )
        temps = stored("zone1_tc1_temperature_c").to_readings()
        assert [r.value for r in temps] == [900.0 + i for i in range(30)]
        assert [r.source_time_ns for r in temps] == [T0 + i * 10**6 for i in range(30)]
        states = [r.value for r in stored("state").to_readings()]
        assert states == ["heating" if i % 2 else "soaking" for i in range(30)]
        assert len(stored("zone1_tc2_temperature_c")) == 0

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
            health = await http.get("/healthz")
            assert health.status_code == 200, health.text
            doc = health.json()
            assert doc["status"] == "ok"
            assert doc["sources"]["xinghai-kilns"]["connected"] is True
            metrics = (await http.get("/metrics")).text
        assert (
            'kilnworks_agent_dead_letters_total{reason="not_finite",source="xinghai-kilns"} 1.0'
            in metrics
        )
        assert (
            'kilnworks_agent_dead_letters_total{reason="clock_skew_future",source="xinghai-kilns"} 1.0'  # noqa: E501
            in metrics
        )
        assert 'kilnworks_agent_source_connected{source="xinghai-kilns"} 1.0' in metrics
        assert "kilnworks_agent_spool_depth_readings" in metrics
        assert f'kilnworks_agent_asset_last_seen_timestamp_seconds{{asset="{asset}"}}' in metrics
        out = [
            line
            for line in metrics.splitlines()
            if line.startswith('kilnworks_agent_readings_out_total{source="xinghai-kilns"}')
        ]
        assert out and float(out[0].split()[-1]) >= 60

        # the server goes away: health turns 503 and says why
        await server.stop()
        await wait_for(
            lambda: not agent.source_status()["xinghai-kilns"]["connected"], 20, "disconnect"
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.health_port}") as http:
            health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["problems"] == ["source xinghai-kilns disconnected"]
    finally:
        await asyncio.to_thread(agent.stop)
        await server.stop()
    with Spool(config.spool.path) as spool:
        reasons = sorted(d["reason"] for d in spool.dead_letters(10))
        assert reasons == ["clock_skew_future", "not_finite"]
        assert spool.depth() == 0  # everything was forwarded before stop returned


async def test_broken_source_is_restarted_and_others_keep_running(tmp_path):
    """A source whose run() raises is logged, counted and restarted; the agent stays up."""

    class Exploding:
        name = "exploding"

        def __init__(self) -> None:
            self.runs = 0

        async def run(self, output) -> None:
            self.runs += 1
            raise RuntimeError("bug in a source")

        def status(self) -> dict:
            return {"connected": False, "runs": self.runs}

    server = KilnServer(tmp_path, zones=1, thermocouples=1)  # never started: unreachable
    server.nodes = {"state": ua.NodeId("xinghai.kiln-1.state", 2)}
    config = parse_agent_text(agent_toml(server, tmp_path, health=""), "agent.toml")
    exploding = Exploding()
    from edge_agent.runtime import default_source_factory

    def factory(cfg, agent_cfg, clock):
        return default_source_factory(cfg, agent_cfg, clock)

    agent = Agent(config, source_factory=factory, source_restart_s=0.01)
    agent.sources.append(exploding)
    await asyncio.to_thread(agent.start)
    try:
        await wait_for(lambda: exploding.runs >= 3, 20, "restarts")
        # the OPC UA source keeps trying its (unreachable) server meanwhile
        await wait_for(lambda: agent.source_status()["xinghai-kilns"]["last_error"], 20, "retry")
        assert agent.source_failures["exploding"] >= 2
        ok, doc = agent.health_report()
        assert not ok and "source exploding disconnected" in doc["problems"]
    finally:
        await asyncio.to_thread(agent.stop)


def test_agent_start_fails_loudly_when_the_spool_is_taken(tmp_path):
    server = KilnServer(tmp_path)
    server.nodes = {"zone1_tc1_temperature_c": ua.NodeId("xinghai.kiln-1.zone1.tc1.temperature", 2)}
    config = parse_agent_text(agent_toml(server, tmp_path, health=""), "agent.toml")
    config.state_dir.mkdir(parents=True)
    with Spool(config.spool.path):  # another agent holds it
        agent = Agent(config)
        with pytest.raises(Exception, match="in use"):
            agent.start()
        with contextlib.suppress(Exception):
            agent.stop()


def test_health_report_shape_is_json_serialisable(tmp_path):
    server = KilnServer(tmp_path)
    server.nodes = {"state": ua.NodeId("xinghai.kiln-1.state", 2)}
    config = parse_agent_text(agent_toml(server, tmp_path, health=""), "agent.toml")
    agent = Agent(config)
    ok, doc = agent.health_report()
    assert ok is False  # not started: the source is not connected
    json.dumps(doc)
