"""Fleet behaviour that needs no OPC UA server: determinism, scheduled faults, bad commands."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simulators.fleet import FaultError, Fleet
from simulators.scenario import parse_scenario
from simulators.truth import TruthWriter, read_truth
from tests.servers import Mosquitto
from tests.simulators.conftest import press_scenario, unique

pytestmark = pytest.mark.integration

JSON_PRESS = "xinghai/plant-1/forming-shop/press-1"
SPB_PRESS = "xinghai/plant-1/forming-shop/press-2"
START = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


async def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def cycles(path: Path | None) -> list[dict]:
    assert path is not None
    return [r for r in read_truth(path) if r["kind"] == "cycle"] if path.exists() else []


async def run_for_cycles(broker: Mosquitto, truth: Path, seed: int, n: int) -> list[dict]:
    fleet = Fleet(
        press_scenario(),
        speed=3600,
        start_time_ns=START,
        mqtt_url=broker.url,
        seed=seed,
        truth_dir=truth,
        topic_root=unique("d"),
        sparkplug_group=unique("d"),
    )
    async with fleet:
        await until(lambda: len(cycles(fleet.truth_path(SPB_PRESS))) >= n, 30, f"{n} cycles")
    return [
        {k: v for k, v in c.items() if k != "delivered"}
        for c in cycles(fleet.truth_path(SPB_PRESS))[:n]
    ]


async def test_same_seed_same_presses_whatever_the_wall_clock(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    a = await run_for_cycles(mosquitto_shared, tmp_path / "a", 5, 40)
    b = await run_for_cycles(mosquitto_shared, tmp_path / "b", 5, 40)
    c = await run_for_cycles(mosquitto_shared, tmp_path / "c", 6, 40)
    assert a == b
    assert a != c
    assert a[0]["t_ns"] > START and a[0]["t_ns"] - START < 120 * 10**9  # on the simulated clock


async def test_scheduled_faults_start_and_end_at_their_simulated_time(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    data = {
        "name": "sched",
        "enterprise": [
            {
                "id": "xinghai",
                "press": [
                    {
                        "id": "press-1",
                        "kind": "isostatic",
                        "style": "json",
                        "ideal_cycle_time_s": 90.0,
                    }
                ],
            }
        ],
        "fault": [
            {
                "target": JSON_PRESS,
                "kind": "press_breakdown",
                "at_h": 1.0,
                "duration_h": 0.5,
                "reason": "seal_leak",
            }
        ],
    }
    fleet = Fleet(
        parse_scenario(data, "sched"),
        speed=7200,
        start_time_ns=START,
        mqtt_url=mosquitto_shared.url,
        truth_dir=tmp_path,
        topic_root=unique("s"),
    )
    async with fleet:
        await until(
            lambda: fleet.clock.now_ns() > START + 2 * 3600 * 10**9, 30, "two simulated hours"
        )
    rows = read_truth(fleet.truth_path(JSON_PRESS))
    faults = [r for r in rows if r["kind"] == "fault"]
    assert [f["phase"] for f in faults] == ["start", "end"]
    h = 3600 * 10**9
    assert faults[0]["t_ns"] == START + h  # on the simulated clock, whatever the wall clock did
    assert faults[1]["t_ns"] == faults[0]["t_ns"] + h // 2
    down = [r for r in rows if r["kind"] == "state" and r["state"] == "breakdown"]
    assert down and down[0]["reason"] == "seal_leak"
    # no cycle while broken down (one cycle's grace: the press task may have been a tick ahead)
    grace = 2 * 90 * 10**9
    assert not [
        c
        for c in rows
        if c["kind"] == "cycle" and faults[0]["t_ns"] + grace < c["t_ns"] < faults[1]["t_ns"]
    ]


async def test_bad_fault_commands_fail_clearly_and_change_nothing(
    mosquitto_shared: Mosquitto,
) -> None:
    fleet = Fleet(
        press_scenario(),
        speed=600,
        mqtt_url=mosquitto_shared.url,
        topic_root=unique("b"),
        sparkplug_group=unique("b"),
    )
    async with fleet:
        with pytest.raises(FaultError, match="unknown fault 'meltdown'"):
            await fleet.inject(JSON_PRESS, "meltdown")
        with pytest.raises(FaultError, match="needs a kiln asset"):
            await fleet.inject(JSON_PRESS, "burner_trip")
        with pytest.raises(FaultError, match="reject_rate must be in"):
            await fleet.inject(JSON_PRESS, "reject_burst", reject_rate=3)
        with pytest.raises(FaultError, match="not valid for a json press"):
            await fleet.inject(JSON_PRESS, "garbage", kinds=["bad_protobuf"])
        with pytest.raises(FaultError, match="needs a press asset"):
            fleet.schedule_fault("xinghai/plant-1/forming-shop/press-9", "short_stop", 1.0)
        assert fleet.presses[JSON_PRESS].reject_rate_override is None


def test_truth_writer_marks_nan_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    w = TruthWriter(tmp_path)
    w.write("e/s/l/a", {"t_ns": 1, "kind": "sample", "field": "x", "value": float("nan")})
    w.close()
    path = tmp_path / "e__s__l__a.jsonl"
    with path.open("a") as f:
        f.write('{"t_ns": 2, "ki')
    assert read_truth(path) == [
        {"t_ns": 1, "kind": "sample", "field": "x", "value": None, "nan": True}
    ]
    assert TruthWriter(None).path("e/s/l/a") is None


def test_a_scenario_with_an_impossible_fault_fails_before_anything_starts() -> None:
    data = {
        "name": "bad-fault",
        "enterprise": [
            {"id": "xinghai", "kiln": [{"id": "kiln-1", "kind": "shuttle", "zones": 2}]}
        ],
        "fault": [
            {
                "target": "xinghai/plant-1/firing-shop/kiln-1",
                "kind": "broken_thermocouple",
                "at_h": 1.0,
                "zone": 9,
            }
        ],
    }
    with pytest.raises(FaultError, match=r"broken_thermocouple: zone must be 1\.\.2, got 9"):
        Fleet(parse_scenario(data, "bad"), opcua_base_port=0)
    Fleet(parse_scenario(data, "bad"), scheduled_faults=False)  # the schedule can be switched off
