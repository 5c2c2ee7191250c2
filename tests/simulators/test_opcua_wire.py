"""A real asyncua client against the simulated kilns over TCP: browse, subscribe, faults, history.

One fleet for the module (starting an OPC UA server costs ~2 s CPU); tests that change the fleet
(faults, a restart) undo what they did or run last in the file.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Client, ua

from simulators.fleet import Fleet
from simulators.truth import read_truth
from tests.simulators.conftest import kiln_scenario

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

KILN = "xinghai/plant-1/firing-shop/kiln-1"
TUNNEL = "xinghai/plant-1/firing-shop/kiln-2"
NS = "urn:kilnworks-sim:kilns"
CELSIUS_UNIT_ID = 4408652  # UNECE "CEL" as OPC UA Part 8 computes it


async def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


class Collector:
    """Subscription handler keeping every DataValue, as a platform source would."""

    def __init__(self) -> None:
        self.values: list[tuple[str, ua.DataValue]] = []

    def datachange_notification(self, node, val, data) -> None:
        self.values.append((node.nodeid.Identifier, data.monitored_item.Value))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory, standard_space):
    truth = tmp_path_factory.mktemp("truth")
    f = Fleet(
        kiln_scenario(),
        speed=1800,
        opcua_base_port=0,
        truth_dir=truth,
        seed=3,
        max_publish_hz=10.0,
        state_dir=tmp_path_factory.mktemp("state"),
        standard_space=standard_space,
    )
    await f.start()
    yield f
    await f.stop()


def endpoint(fleet: Fleet) -> str:
    return fleet.manifest()["opcua"][0]["endpoint"]


async def test_address_space_has_kilns_zones_and_analog_items(fleet: Fleet) -> None:
    async with Client(endpoint(fleet)) as c:
        idx = await c.get_namespace_index(NS)
        kiln = await c.nodes.objects.get_child(f"{idx}:kiln-1")
        names = {(await n.read_browse_name()).Name for n in await kiln.get_children()}
        assert {
            "State",
            "Programme",
            "ProgrammeSegments",
            "FiringId",
            "GasFlow",
            "Energy",
            "O2",
            "CO",
            "Zone1",
            "Zone2",
        } <= names
        assert "CarPushCount" not in names  # shuttle kilns do not push cars
        tunnel = await c.nodes.objects.get_child(f"{idx}:kiln-2")
        assert {"CarPushCount", "PushIntervalMinutes", "Zone3"} <= {
            (await n.read_browse_name()).Name for n in await tunnel.get_children()
        }
        zone1 = await kiln.get_child(f"{idx}:Zone1")
        assert await zone1.read_type_definition() == ua.NodeId(ua.ObjectIds.FolderType)
        tc = await kiln.get_child([f"{idx}:Zone1", f"{idx}:TC2"])
        assert tc.nodeid == ua.NodeId("xinghai.kiln-1.zone1.tc2.temperature", idx)
        kilns = fleet.manifest()["opcua"][0]["kilns"]
        assert kilns[1]["zone_centres_m"] == [16.0, 48.0, 80.0] and kilns[1]["cars_in_kiln"] == 40
        assert kilns[0]["programmes"] == ["test-fast"]
        nodes = kilns[0]["nodes"]
        assert nodes["zone1_tc2_temperature_c"] == tc.nodeid.to_string()
        assert await tc.read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)
        eu = await (await tc.get_child("0:EngineeringUnits")).read_value()
        assert eu.UnitId == CELSIUS_UNIT_ID and eu.DisplayName.Text == "°C"
        rng = await (await tc.get_child("0:EURange")).read_value()
        assert (rng.Low, rng.High) == (0.0, 1450.0)
        build = await c.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_BuildInfo)).read_value()
        assert build.ManufacturerName == "kilnworks simulators"
        hist = await tc.read_attribute(ua.AttributeIds.Historizing)
        assert hist.Value.Value is True
        gas = await kiln.get_child(f"{idx}:GasFlow")
        assert (
            await (await gas.get_child("0:EngineeringUnits")).read_value()
        ).DisplayName.Text == "m³/h"
        assert await (await kiln.get_child(f"{idx}:State")).read_value() in (
            "idle",
            "heating",
            "soaking",
            "cooling",
        )


async def test_subscription_carries_simulated_source_time_and_matches_truth(fleet: Fleet) -> None:
    handler = Collector()
    async with Client(endpoint(fleet)) as c:
        tc = c.get_node(
            fleet.manifest()["opcua"][0]["kilns"][0]["nodes"]["zone1_tc1_temperature_c"]
        )
        sub = await c.create_subscription(50, handler)
        await sub.subscribe_data_change(tc)
        await until(lambda: len(handler.values) >= 6, 30, "six temperature samples")
        await sub.delete()
    step_ns = int(fleet.sample_interval_s * 1e9)
    stamps = [int(dv.SourceTimestamp.timestamp() * 1e6) * 1000 for _, dv in handler.values]
    assert all(b > a for a, b in itertools.pairwise(stamps)), "source time must advance"
    # on the simulated clock: multiples of the sample interval after the simulated start
    assert all((s - fleet.clock.start_time_ns) % step_ns == 0 for s in stamps)
    assert stamps[-1] <= fleet.clock.now_ns()
    # the server timestamp is wall time, far behind simulated time at speed 1800
    assert abs(handler.values[-1][1].ServerTimestamp.timestamp() - time.time()) < 120
    truth = {
        r["t_ns"]: r
        for r in read_truth(fleet.truth_path(KILN))
        if r["kind"] == "sample" and r["field"] == "zone1_tc1_temperature_c"
    }
    for s, (_, dv) in zip(stamps, handler.values, strict=True):
        if s == stamps[0] and s not in truth:
            continue  # the initial read can predate the first tick
        rec = truth[s]
        assert dv.Value.Value == rec["value"]  # exactly what was published
        assert dv.StatusCode.is_good() and rec["quality"] == "good"
        assert abs(rec["value"] - rec["true_value"]) < 8.0  # offset (sd 1.5) + noise (sd 0.6)


async def test_broken_thermocouple_shows_bad_sensor_failure_then_recovers(fleet: Fleet) -> None:
    handler = Collector()
    node_id = fleet.manifest()["opcua"][0]["kilns"][0]["nodes"]["zone2_tc1_temperature_c"]
    async with Client(endpoint(fleet)) as c:
        sub = await c.create_subscription(50, handler)
        await sub.subscribe_data_change(c.get_node(node_id))
        await until(lambda: len(handler.values) >= 1, 20, "a first value")
        await fleet.inject(KILN, "broken_thermocouple", zone=2, tc=1)

        def bad() -> list[ua.DataValue]:
            return [
                dv
                for _, dv in handler.values
                if dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
            ]

        await until(lambda: len(bad()) >= 1, 20, "BadSensorFailure on the wire")
        assert bad()[0].Value.Value is None  # OPC UA: a Bad status carries a null value
        await fleet.clear(KILN, "broken_thermocouple")
        n = len(handler.values)
        await until(
            lambda: any(dv.StatusCode.is_good() for _, dv in handler.values[n:]), 20, "Good again"
        )
        await sub.delete()
    rows = read_truth(fleet.truth_path(KILN))
    faults = [r for r in rows if r["kind"] == "fault" and r["fault"] == "broken_thermocouple"]
    assert [f["phase"] for f in faults] == ["start", "end"]
    bad_rows = [r for r in rows if r["kind"] == "sample" and r.get("quality") == "bad"]
    assert bad_rows and all(r["field"] == "zone2_tc1_temperature_c" for r in bad_rows)
    assert all(r["value"] is None and 0 < r["true_value"] < 1450 for r in bad_rows)
    assert all(
        faults[0]["t_ns"] <= r["t_ns"] <= faults[1]["t_ns"] + int(fleet.sample_interval_s * 1e9)
        for r in bad_rows
    )


async def test_client_with_certificate_signs_and_encrypts(fleet: Fleet, tmp_path: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = tmp_path / "client_key.pem", tmp_path / "client_cert.der"
    uri = "urn:kilnworks-test:client"
    await setup_self_signed_certificate(
        key,
        cert,
        uri,
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "kilnworks test client"},
    )
    for mode in ("Sign", "SignAndEncrypt"):
        c = Client(endpoint(fleet))
        c.application_uri = uri
        await c.set_security_string(f"Basic256Sha256,{mode},{cert},{key}")
        async with c:
            state = c.get_node(fleet.manifest()["opcua"][0]["kilns"][0]["nodes"]["state"])
            assert await state.read_value() in ("idle", "heating", "soaking", "cooling")
    server_cert = fleet.state_dir / "xinghai" / "server_cert.der"
    assert server_cert.exists()


async def test_history_read_fills_the_gap_of_a_server_restart(fleet: Fleet) -> None:
    node_id = fleet.manifest()["opcua"][0]["kilns"][0]["nodes"]["zone1_tc2_temperature_c"]
    await fleet.restart_opcua("xinghai", down_wall_s=1.0)
    rows = read_truth(fleet.truth_path(KILN))
    gap = [
        r
        for r in rows
        if r["kind"] == "sample" and r["field"] == "zone1_tc2_temperature_c" and not r["live"]
    ]
    assert gap, "the kiln kept sampling while its server was down"
    async with Client(endpoint(fleet)) as c:  # a fresh session after the restart
        node = c.get_node(node_id)
        lo = gap[0]["t_ns"] // 1000 * 1000
        hi = gap[-1]["t_ns"]
        from datetime import UTC, datetime

        start = datetime.fromtimestamp(lo / 1e9, UTC)
        end = datetime.fromtimestamp(hi / 1e9, UTC)
        history = await node.read_raw_history(start, end)
    got = {int(dv.SourceTimestamp.timestamp() * 1e6) * 1000: dv.Value.Value for dv in history}
    for r in gap:
        assert got[r["t_ns"]] == r["value"]
