"""Unit tests of the pure models: programmes, kiln physics, presses (no network)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from simulators.kiln_model import NS_PER_H, ShuttleKiln, TunnelKiln
from simulators.press_model import NS_PER_H as P_NS_PER_H
from simulators.press_model import PressModel
from simulators.programmes import BUILTIN, Programme, Schedule, segment_from_dict

LARGE = BUILTIN["hv-insulator-large"]


def test_schedule_travels_through_ramps_holds_and_cools() -> None:
    prog = Programme(
        "p",
        tuple(
            segment_from_dict(s, "p")
            for s in (
                {"kind": "ramp", "rate_c_h": 100, "target_c": 525},
                {"kind": "hold", "hours": 2},
                {"kind": "cool", "rate_c_h": 50, "target_c": 425},
                {"kind": "natural_cool", "target_c": 80},
            )
        ),
    )
    s = Schedule(prog, start_c=25.0)
    assert s.at(1.0) == (125.0, 100.0, 0)
    assert s.at(5.5) == (525.0, 0.0, 1)  # ramp took 5 h, then hold
    sp, rate, seg = s.at(8.0)  # 1 h into the cool
    assert (sp, rate, seg) == (475.0, -50.0, 2)
    assert s.at(20.0) == (80.0, 0.0, 3)
    assert not s.finished(20.0, 200.0) and s.finished(20.0, 79.0)


def test_segments_round_trip_the_wire_json_and_reject_bad_input() -> None:
    wire = json.loads(LARGE.wire_json())
    assert wire[0] == {"kind": "ramp", "rate_c_h": 25, "target_c": 500}
    assert wire[-1] == {"kind": "natural_cool", "target_c": 80}
    assert tuple(segment_from_dict(d, "x") for d in wire) == LARGE.segments
    with pytest.raises(ValueError, match=r"x\.rate_c_h"):
        segment_from_dict({"kind": "ramp", "rate_c_h": -5, "target_c": 500}, "x")
    with pytest.raises(ValueError, match="unknown key"):
        segment_from_dict({"kind": "hold", "hours": 1, "target_c": 3}, "x")


def test_builtin_programmes_follow_electric_porcelain_practice() -> None:
    for prog in (BUILTIN["hv-insulator-large"], BUILTIN["hv-insulator-standard"]):
        assert 1250 <= prog.peak_c <= 1350
        heating = [s for s in prog.segments if s.kind == "ramp"]
        assert heating[0].target_c == 500 and 20 <= heating[0].rate_c_h <= 40  # dehydration
        through_quartz = next(s for s in heating if s.target_c > 573)
        assert through_quartz.rate_c_h <= 30  # slow through the 573 C inversion
        assert any(
            s.kind == "hold" for s in prog.segments[heating.index(heating[-1]) + 1 :]
        )  # soak
        cool_573 = next(s for s in prog.segments if s.kind == "cool" and s.target_c <= 573)
        assert cool_573.rate_c_h <= 60


def fire(kiln: ShuttleKiln, hours: float, every_h: float = 0.25) -> list[dict]:
    rows, t = [], kiln.t_ns
    end = t + int(hours * NS_PER_H)
    while t < end:
        t += int(every_h * NS_PER_H)
        kiln.advance_to(t)
        snap = kiln.snapshot()
        rows.append(
            {k: v.value for k, v in snap.items()}
            | {"true": snap["zone1_tc1_temperature_c"].true_value}
        )
    return rows


def shuttle(seed: int = 1, **kw) -> ShuttleKiln:
    return ShuttleKiln(
        "e/s/l/kiln-1", 2, 2, [LARGE], np.random.default_rng(seed), 0, first_firing_h=0.0, **kw
    )


def test_a_healthy_firing_tracks_its_programme_and_ends_idle() -> None:
    kiln = shuttle()
    rows = fire(kiln, 80.0)
    # every timed segment (the natural cool has no travelling setpoint to follow)
    timed = [r for r in rows if r["state"] != "idle" and r["zone1_setpoint_c"] not in (80.0,)]
    dev = [abs(r["true"] - r["zone1_setpoint_c"]) for r in timed]
    assert max(dev) < 12.0  # within the +-10 C band but for a brief corner
    peak = max(r["true"] for r in rows)
    assert 1285 < peak < 1315
    states = [r["state"] for r in rows]
    assert {"heating", "soaking", "cooling", "idle"} <= set(states)
    assert [e["phase"] for e in kiln.events if e["kind"] == "firing"][:2] == ["start", "end"]
    reducing = [r for r in rows if r["state"] == "heating" and r["zone1_setpoint_c"] > 1050]
    assert all(r["co_ppm"] > 10000 and r["o2_pct"] < 1.5 for r in reducing)  # vitrification reduces
    oxidising = [r for r in rows if r["state"] == "heating" and r["zone1_setpoint_c"] < 900]
    assert all(r["co_ppm"] < 500 and r["o2_pct"] > 3 for r in oxidising)
    energy = [r["energy_kwh"] for r in rows]
    assert all(b >= a for a, b in itertools.pairwise(energy)) and energy[-1] > 1000


def test_stall_makes_the_kiln_fall_behind_at_full_power() -> None:
    healthy, stalled = shuttle(2), shuttle(2)
    stalled.bank.available[:] = 0.35
    h, s = fire(healthy, 30.0), fire(stalled, 30.0)
    assert s[-1]["true"] < h[-1]["true"] - 200
    assert s[-1]["zone1_power_pct"] == pytest.approx(100.0)


def test_burner_trip_cools_the_kiln_and_reports_fault() -> None:
    kiln = shuttle(3)
    fire(kiln, 20.0)
    before = kiln.bank.temperature.copy()
    kiln.bank.tripped[:] = True
    rows = fire(kiln, 2.0)
    assert rows[-1]["state"] == "fault" and rows[-1]["gas_flow_m3_h"] == 0.0
    assert (kiln.bank.temperature < before - 20).all()


def test_overshoot_settles_above_the_setpoint() -> None:
    kiln = shuttle(4)
    kiln.bank.bias[:] = 40.0
    rows = fire(kiln, 12.0)
    assert rows[-1]["true"] - rows[-1]["zone1_setpoint_c"] > 25


def test_same_seed_same_firing_different_seed_different_noise() -> None:
    a, b, c = fire(shuttle(9), 5.0), fire(shuttle(9), 5.0), fire(shuttle(10), 5.0)
    assert a == b
    assert a[-1]["zone1_tc1_temperature_c"] != c[-1]["zone1_tc1_temperature_c"]


def test_tunnel_holds_its_profile_and_pushes_cars_on_time() -> None:
    kiln = TunnelKiln(
        "e/s/l/kiln-2",
        3,
        2,
        [600.0, 1280.0, 700.0],
        np.random.default_rng(5),
        0,
        push_interval_min=30,
    )
    kiln.advance_to(10 * NS_PER_H)
    assert kiln.car_push_count in (19, 20)
    snap = kiln.snapshot()
    assert abs(snap["zone2_tc1_temperature_c"].true_value - 1280.0) < 15
    kiln.pushes_stopped = True
    kiln.advance_to(12 * NS_PER_H)
    assert kiln.snapshot()["car_push_count"].value == kiln.car_push_count
    assert json.loads(snap["programme_segments"].value)[1]["target_c"] == 1280


def run_press(p: PressModel, hours: float) -> tuple[list[dict], list[dict]]:
    cycles, states = [], [p.initial().state]
    while p.next_t_ns < hours * P_NS_PER_H:
        ev = p.advance()
        if ev.cycle:
            cycles.append(ev.cycle)
        if ev.state:
            states.append(ev.state)
    return cycles, states


def test_press_counts_are_consistent_and_oee_is_plausible() -> None:
    p = PressModel("e/s/l/press-1", "isostatic", 90.0, np.random.default_rng(1), 0)
    cycles, states = run_press(p, 48.0)
    assert [c["cycle"] for c in cycles] == list(range(1, len(cycles) + 1))
    assert cycles[-1]["count_good"] == sum(c["result"] == "good" for c in cycles)
    assert all((c["reject_reason"] is None) == (c["result"] == "good") for c in cycles)
    reasons = {(s["state"], s["reason"]) for s in states}
    assert ("planned_stop", "meal_break") in reasons and ("setup", "die_change") in reasons
    assert any(s == "idle" for s, _ in reasons)
    ideal_count = 48 * 3600 / 90
    assert 0.6 * ideal_count < len(cycles) < 0.97 * ideal_count  # losses, but a working press
    assert 0.9 < cycles[-1]["count_good"] / len(cycles) < 0.995


def test_forced_breakdown_holds_until_released_and_reject_burst_rejects() -> None:
    p = PressModel("e/s/l/press-2", "extruder", 30.0, np.random.default_rng(2), 0)
    p.initial()
    ev = p.force(10**12, "breakdown", "motor_trip", None)
    assert ev.state == {"t_ns": 10**12, "state": "breakdown", "reason": "motor_trip"}
    assert p.next_t_ns > 10**17
    p.release(2 * 10**12)
    p.reject_rate_override = 1.0
    assert p.advance().state["state"] == "running"
    cycles = [p.advance().cycle for _ in range(5)]
    assert all(c is None or c["result"] == "reject" for c in cycles)


def test_a_kiln_can_be_met_mid_firing() -> None:
    start = 100 * NS_PER_H
    kiln = ShuttleKiln(
        "e/s/l/kiln-1", 2, 2, [LARGE], np.random.default_rng(1), start, first_firing_h=-52.0
    )
    assert kiln.t_ns == start
    snap = kiln.snapshot()
    assert snap["state"].value == "cooling" and snap["firing_id"].value
    assert 600 < snap["zone1_tc1_temperature_c"].true_value < 1000
    assert kiln.events[0]["phase"] == "start" and kiln.events[0]["t_ns"] == start - 52 * NS_PER_H
