"""The OPC UA source against a real asyncua server over TCP (tests/edge_agent/kiln_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from pathlib import Path

import pytest
from asyncua import ua

from core.reading import Quality
from edge_agent.config import parse_agent_text
from edge_agent.sources.opcua import OpcUaSource
from tests.edge_agent.fakes import RecordingOutput
from tests.edge_agent.kiln_server import KilnServer, wait_for

pytestmark = pytest.mark.integration

# Test samples start an hour ahead of the wall clock, whole seconds (OPC UA DateTime and asyncua
# keep microseconds): newer than the values the server writes when it starts.
T0 = (time.time_ns() // 10**9 + 3600) * 10**9


def source_config(
    server: KilnServer, tmp: Path, extra: str = "", node_extra: str = "", only: dict | None = None
):
    """Agent config mapping every node; ``node_extra`` goes into every node table, ``only``
    (field -> text) into that field's table."""
    only = only or {}
    nodes = "".join(
        f"""
  [[source.node]]
  node_id = "{server.node_id_text(f)}"
  asset = "{server.asset}"
  field = "{f}"
  {node_extra}
  {only.get(f, "")}
"""
        for f in server.fields()
    )
    text = f"""
[agent]
enterprise = "{server.enterprise}"
site = "plant-1"
state_dir = "{tmp / "state"}"

[output]
store_url = "sqlite:///{tmp / "store.db"}"

[health]
listen = ""

[[source]]
type = "opcua"
name = "kilns"
endpoint = "{server.endpoint}"
publishing_interval_ms = 20
sampling_interval_ms = 0
queue_size = 1000
reconnect_min_s = 0.05
reconnect_max_s = 0.5
watchdog_s = 0.2
{extra}
{nodes}
"""
    return parse_agent_text(text, "test-agent.toml").opcua[0]


@contextlib.asynccontextmanager
async def running(source: OpcUaSource, output: RecordingOutput):
    task = asyncio.create_task(source.run(output))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish_series(
    server: KilnServer, n: int, start_ns: int, *, step_ns: int = 1_000_000, skip: str = ""
):
    """n samples on every thermocouple and setpoint, plus state changes."""
    for i in range(n):
        t = start_ns + i * step_ns
        for f in server.fields():
            if f == skip:
                continue
            if f.endswith("temperature_c"):
                await server.publish(f, 600.0 + i * 0.5, t)
            elif f.endswith("setpoint_c"):
                await server.publish(f, 600.0 + i, t)
        if i % 10 == 0:
            await server.publish("state", "heating" if i % 20 == 0 else "soaking", t)
            # +1: never equal to the value the server starts with (a real server historizes
            # value *changes* only, so the first sample must be a change)
            await server.publish("car_push_count", i // 10 + 1, t)


async def wait_all_published(server: KilnServer, output: RecordingOutput, what: str) -> None:
    """Wait until every sample published since T0 arrived; on timeout, say which are missing."""
    try:
        await wait_for(
            lambda: (
                sum(1 for r in output.readings if r.source_time_ns >= T0)
                >= sum(1 for p in server.published if p.time_ns >= T0)
            ),
            30,
            what,
        )
    except TimeoutError:
        assert_exactly_published(server, output, since_ns=T0)
        raise


def assert_exactly_published(server: KilnServer, output: RecordingOutput, *, since_ns: int = 0):
    """Every published sample arrived once, value for value, with its source timestamp."""
    got: dict[tuple[str, int], list] = {}
    for r in output.readings:
        got.setdefault((r.field, r.source_time_ns), []).append(r.value)
    dups = {k: v for k, v in got.items() if len(v) > 1}
    assert not dups, f"duplicates: {list(dups.items())[:5]}"
    want = {(p.field, p.time_ns): p.value for p in server.published if p.time_ns >= since_ns}
    missing = sorted(set(want) - set(got))
    assert not missing, f"{len(missing)} published samples missing, e.g. {missing[:5]}"
    wrong = [(k, want[k], got[k][0]) for k in want if want[k] is not None and got[k][0] != want[k]]
    assert not wrong, f"values differ: {wrong[:5]}"


async def test_every_change_arrives_with_source_time_quality_and_unit_range(tmp_path):
    server = KilnServer(tmp_path)
    await server.start()
    banded = "zone2_tc2_temperature_c"  # absolute deadband 5 °C on this one
    try:
        cfg = source_config(server, tmp_path, only={banded: "deadband = 5.0"})
        source = OpcUaSource(cfg, state_dir=tmp_path / "state")
        output = RecordingOutput()
        async with running(source, output):
            await asyncio.wait_for(source.connected_event.wait(), 20)
            start = T0
            await publish_series(server, 50, start, skip=banded)
            for i, v in enumerate([100.0, 101.0, 103.0, 110.0, 111.0, 90.0]):
                await server.publish(banded, v, T0 + 10**8 + i * 1000, record=False)
            # a repeated value with a new timestamp is a new sample (trigger includes timestamp)
            t = start + 10**9
            await server.publish("zone1_setpoint_c", 700.0, t)
            await server.publish("zone1_setpoint_c", 700.0, t + 1000)
            # a broken thermocouple: Bad status, value kept
            await server.publish(
                "zone2_tc1_temperature_c", 650.0, t + 2000, status=ua.StatusCodes.BadSensorFailure
            )
            # beyond the EURange 0..1450 read from the server: dead-lettered, not stored
            await server.publish("zone1_tc2_temperature_c", 2000.0, t + 3000, record=False)
            # the initial values (written at server start, before the series) also arrive;
            # compare from the first published instant
            expected = sum(1 for p in server.published)
            await wait_for(
                lambda: (
                    sum(
                        1
                        for r in output.readings
                        if r.source_time_ns >= start and r.field != banded
                    )
                    >= expected
                    and output.rejects
                    and any(r.field == banded and r.value == 90.0 for r in output.readings)
                ),
                20,
                "all published samples",
            )
        assert_exactly_published(server, output, since_ns=start)
        banded_values = [
            r.value for r in output.readings if r.field == banded and r.source_time_ns >= T0
        ]
        assert banded_values == [100.0, 110.0, 90.0]  # changes of more than 5 °C only
        bad = [r for r in output.readings if r.source_time_ns == t + 2000]
        # stored with the last value the thermocouple gave before it broke
        assert [(r.quality, r.value) for r in bad] == [(Quality.BAD, 600.0 + 49 * 0.5)]
        good = [r for r in output.readings if r.source_time_ns == t]
        assert all(r.quality == Quality.GOOD for r in good)
        assert all(r.asset == server.asset for r in output.readings)
        assert [(rej[1], "2000.0" in rej[2]) for rej in output.rejects] == [("out_of_range", True)]
        status = source.status()
        assert status["monitored"] == len(server.fields())
        assert status["reconnects"] == 0
    finally:
        await server.stop()


async def test_server_restart_gap_is_filled_from_history_without_duplicates(tmp_path):
    server = KilnServer(tmp_path)
    await server.start()
    try:
        source = OpcUaSource(source_config(server, tmp_path), state_dir=tmp_path / "state")
        output = RecordingOutput()
        async with running(source, output):
            await asyncio.wait_for(source.connected_event.wait(), 20)
            await publish_series(server, 20, T0)
            await wait_for(lambda: output.count() >= len(server.published), 20, "first series")
            await server.stop_network()
            await wait_for(lambda: not source.connected, 20, "the agent to notice")
            await publish_series(server, 5, T0 + 5 * 10**8)  # while the port is closed
            await server.start_network()
            # published while the agent is not subscribed: only history can bring these back
            assert not source.connected
            await publish_series(server, 20, T0 + 10**9)
            await wait_for(lambda: source.connected, 20, "reconnect")
            await publish_series(server, 5, T0 + 2 * 10**9)
            await wait_all_published(server, output, "every sample after the restart")
        assert_exactly_published(server, output, since_ns=T0)
        status = source.status()
        assert status["reconnects"] >= 1
        assert status["history_readings"] > 0
    finally:
        await server.stop()


async def test_agent_restart_reads_what_it_missed_from_history(tmp_path):
    """A new source object (a restarted agent) resumes from the marks in state_dir."""
    server = KilnServer(tmp_path)
    await server.start()
    try:
        cfg = source_config(server, tmp_path)
        output = RecordingOutput()
        first = OpcUaSource(cfg, state_dir=tmp_path / "state")
        async with running(first, output):
            await asyncio.wait_for(first.connected_event.wait(), 20)
            await publish_series(server, 10, T0)
            await wait_for(lambda: output.count() >= len(server.published), 20, "first series")
        await publish_series(server, 10, T0 + 10**9)  # nobody listening
        second = OpcUaSource(cfg, state_dir=tmp_path / "state")
        async with running(second, output):
            await wait_all_published(server, output, "the missed samples")
        assert_exactly_published(server, output, since_ns=T0)
        assert second.status()["history_readings"] >= 10 * 4
    finally:
        await server.stop()


async def test_spool_failure_is_not_acknowledged_and_refilled(tmp_path):
    """If accept raises (disk full), the marks do not move: the next session re-reads."""
    server = KilnServer(tmp_path)
    await server.start()
    try:
        source = OpcUaSource(source_config(server, tmp_path), state_dir=tmp_path / "state")
        output = RecordingOutput()
        async with running(source, output):
            await asyncio.wait_for(source.connected_event.wait(), 20)
            await publish_series(server, 5, T0)
            await wait_for(lambda: output.count() >= len(server.published), 20, "first series")
            output.fail_next = 1
            await publish_series(server, 5, T0 + 10**9)
            await wait_all_published(server, output, "re-read after the failure")
        assert_exactly_published(server, output, since_ns=T0)
        assert source.status()["sessions"] >= 2
    finally:
        await server.stop()


async def test_sign_and_encrypt_with_generated_certificate_and_password(tmp_path):
    server = KilnServer(tmp_path, zones=1, thermocouples=1, security=True, users={"kiln": "s3cret"})
    await server.start()
    try:
        extra = (
            'security_policy = "Basic256Sha256"\nsecurity_mode = "SignAndEncrypt"\n'
            'username = "kiln"\npassword = "s3cret"'
        )
        cfg = source_config(server, tmp_path, extra=extra)
        source = OpcUaSource(cfg, state_dir=tmp_path / "state")
        output = RecordingOutput()
        async with running(source, output):
            await asyncio.wait_for(source.connected_event.wait(), 30)
            await server.publish("zone1_tc1_temperature_c", 812.5, T0)
            await wait_for(lambda: any(r.value == 812.5 for r in output.readings), 20, "value")
        assert (tmp_path / "state" / "pki" / "agent-cert.der").exists()
        # wrong password: never connects, says why
        bad = source_config(server, tmp_path, extra=extra.replace("s3cret", "wrong"))
        source2 = OpcUaSource(bad, state_dir=tmp_path / "state")
        async with running(source2, RecordingOutput()):
            await wait_for(lambda: source2.last_error != "", 30, "an error")
            assert not source2.connected
    finally:
        await server.stop()


async def test_unreachable_server_backs_off_with_jitter(tmp_path):
    server = KilnServer(tmp_path, zones=1, thermocouples=1)  # never started
    server.nodes = {"zone1_tc1_temperature_c": ua.NodeId("x.kiln-1.zone1.tc1.temperature", 2)}
    cfg = source_config(server, tmp_path)
    source = OpcUaSource(cfg, state_dir=tmp_path / "state")
    delays = [source._backoff(a) for a in range(10)]
    assert all(0.025 <= d <= 0.5 for d in delays)
    assert delays[-1] >= 0.25  # capped at reconnect_max_s, at least half of it
    started = time.monotonic()
    async with running(source, RecordingOutput()):
        await wait_for(lambda: source.last_error != "", 20, "a connection error")
    assert not source.connected
    assert time.monotonic() - started < 20


async def test_network_drop_without_fin_is_detected_and_the_gap_filled(tmp_path):
    """Traffic stops without the socket closing: the keep-alive probe notices, the source
    reconnects once the network is back and HistoryRead fills what it missed."""
    from tests.edge_agent.tcp_proxy import BlackholeProxy

    server = KilnServer(tmp_path, zones=1, thermocouples=2)
    await server.start()
    proxy = BlackholeProxy(server.port)
    await proxy.start()
    try:
        cfg = source_config(server, tmp_path, extra="request_timeout_s = 1.0")
        via_proxy = cfg.endpoint.replace(f":{server.port}/", f":{proxy.port}/")
        cfg = dataclasses.replace(cfg, endpoint=via_proxy, watchdog_s=0.5)
        source = OpcUaSource(cfg, state_dir=tmp_path / "state")
        output = RecordingOutput()
        async with running(source, output):
            await asyncio.wait_for(source.connected_event.wait(), 20)
            await publish_series(server, 5, T0)
            await wait_all_published(server, output, "before the drop")
            proxy.blackhole()
            await publish_series(server, 5, T0 + 10**9)  # nobody hears these live
            await wait_for(lambda: not source.connected, 30, "the probe to notice")
            proxy.restore()
            await wait_for(lambda: source.connected, 30, "reconnect")
            await publish_series(server, 5, T0 + 2 * 10**9)
            await wait_all_published(server, output, "every sample across the drop")
        assert_exactly_published(server, output, since_ns=T0)
        assert source.status()["history_readings"] > 0
    finally:
        await proxy.stop()
        await server.stop()
