"""OEE to ISO 22400-2: the published worked example, TEEP, microstops, edge cases, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.oee import (
    CycleCounts,
    MachineState,
    StateTimeline,
    compute_oee,
    encode_reasons,
    from_opc40001,
    state_code,
)
from analytics.shifts import ShiftCalendar

S = 1_000_000_000
MIN = 60 * S
H = 60 * MIN

# oee.com's worked example ("Calculate OEE", https://www.oee.com/calculating-oee/): an 8-hour
# shift (480 min) with two 15-minute breaks and a 30-minute meal break -> planned production
# time 420 min; 47 min down -> run time 373 min; ideal cycle time 1.0 s; total count 19,271;
# reject count 423 -> good 18,848. A = 373/420 = 0.8881, P = 19,271 s / 22,380 s = 0.8611,
# Q = 18,848/19,271 = 0.9780, OEE = 0.7479.
DAY = 1_764_000_000 * S - (1_764_000_000 * S) % (24 * H)  # a UTC midnight
SHIFTS_UTC = """
timezone = "UTC"
[[shift]]
name = "day"
start = "08:00"
end = "16:00"
breaks = [{ start = "10:00", end = "10:15" }, { start = "12:00", end = "12:30" },
          { start = "14:00", end = "14:15" }]
"""


def worked_example() -> tuple[StateTimeline, CycleCounts]:
    at = DAY + 8 * H
    timeline = StateTimeline.from_names(
        [at, at + 300 * MIN, at + 347 * MIN, at + 8 * H],
        ["running", "breakdown", "running", "idle"],
        [0, 7, 0, 0],
    )
    # 19,271 cycles spread over the running time outside breaks, the first 423 rejected.
    run_spans = [(0, 120), (135, 240), (270, 300), (347, 360), (375, 480)]  # minutes
    t = np.concatenate(
        [np.linspace(at + a * MIN, at + b * MIN, 10_000, endpoint=False) for a, b in run_spans]
    ).astype(np.int64)[:: max(1, 50_000 // 19_271)]
    t = np.sort(np.random.default_rng(1).choice(t, 19_271, replace=False))
    good = np.ones(19_271)
    good[:423] = 0
    return timeline, CycleCounts(t, good, 1 - good)


def test_published_worked_example_with_shift_calendar() -> None:
    timeline, counts = worked_example()
    r = compute_oee(
        timeline,
        counts,
        window=(DAY, DAY + 24 * H),
        ideal_cycle_time_s=1.0,
        shifts=ShiftCalendar.parse(SHIFTS_UTC),
    )
    assert r.pot_ns == 480 * MIN and r.pdot_ns == 60 * MIN and r.pbt_ns == 420 * MIN
    assert r.apt_ns == 373 * MIN and r.adet_ns == 47 * MIN
    assert r.produced == 19_271 and r.good == 18_848 and r.rejected == 423
    assert r.availability == pytest.approx(373 / 420)
    assert r.performance == pytest.approx(19_271 / (373 * 60))
    assert r.quality == pytest.approx(18_848 / 19_271)
    assert r.oee == pytest.approx(0.7479, abs=5e-5)
    # TEEP = OEE x planned production time / all time (oee.com): one 420-min shift a day.
    assert r.utilisation == pytest.approx(420 / 1440)
    assert r.teep == pytest.approx(r.oee * 420 / 1440)
    assert r.downtime_by_reason == ((7, 47 * MIN),)
    assert r.reason_coverage == 1.0
    assert r.stop_count == 1 and r.microstop_count == 0
    # ISO 22400-2 composites
    assert r.aupt_ns == r.apt_ns + r.asut_ns
    assert r.aubt_ns == r.aupt_ns + r.adet_ns
    losses = r.six_big_losses()
    assert losses["equipment_failure_s"] == 47 * 60
    assert losses["reduced_speed_s"] == pytest.approx(373 * 60 - 19_271)
    assert losses["process_defects_s"] == pytest.approx(423)
    assert losses["fully_productive_s"] == pytest.approx(18_848)
    # The losses and the fully productive time account for every second of PBT.
    assert sum(v for v in losses.values()) == pytest.approx(420 * 60)


def test_without_calendar_the_window_is_planned_time() -> None:
    timeline, counts = worked_example()
    start = DAY + 8 * H
    r = compute_oee(timeline, counts, window=(start, start + 8 * H), ideal_cycle_time_s=1.0)
    assert r.pot_ns == r.pbt_ns == 8 * H and r.pdot_ns == 0
    assert r.apt_ns == (480 - 47) * MIN  # breaks are run time when nothing says otherwise
    assert r.teep == pytest.approx(r.oee)


def test_microstops_are_a_performance_loss_not_availability() -> None:
    t0 = DAY
    timeline = StateTimeline.from_names(
        [t0, t0 + 10 * MIN, t0 + 10 * MIN + 60 * S, t0 + 20 * MIN, t0 + 20 * MIN + 50 * S,
         t0 + 20 * MIN + 100 * S, t0 + 30 * MIN],
        ["running", "idle", "running", "starved", "blocked", "running", "idle"],
        end_ns=t0 + 60 * MIN,
    )  # fmt: skip
    counts = CycleCounts.empty()
    window = (t0, t0 + 60 * MIN)
    r = compute_oee(timeline, counts, window=window, ideal_cycle_time_s=1.0, microstop_s=120)
    # 60 s idle and a 100 s starved+blocked episode are minor stops; the final 30 min is not.
    assert r.microstop_ns == 160 * S and r.microstop_count == 2
    assert r.apt_ns == 30 * MIN and r.adot_ns == 30 * MIN and r.stop_count == 1
    assert r.availability == pytest.approx(0.5)
    # With a 90 s threshold the 100 s episode (two states back to back) is a real stop.
    r90 = compute_oee(timeline, counts, window=window, ideal_cycle_time_s=1.0, microstop_s=90)
    assert r90.microstop_ns == 60 * S and r90.adot_ns == 30 * MIN + 100 * S
    assert r90.stop_count == 2 and r90.microstop_count == 1


def test_a_stop_cut_by_the_window_is_judged_on_its_full_length() -> None:
    t0 = DAY
    timeline = StateTimeline.from_names(
        [t0, t0 + 59 * MIN, t0 + 65 * MIN], ["running", "breakdown", "running"], end_ns=t0 + 2 * H
    )
    r = compute_oee(
        timeline, CycleCounts.empty(), window=(t0, t0 + H), ideal_cycle_time_s=1, microstop_s=300
    )
    assert r.adet_ns == MIN and r.microstop_ns == 0  # 6-minute breakdown, 1 minute of it here


def test_planned_stop_state_is_planned_downtime_and_its_counts_are_outside() -> None:
    t0 = DAY
    timeline = StateTimeline.from_names(
        [t0, t0 + 30 * MIN, t0 + 40 * MIN], ["running", "planned_stop", "running"], end_ns=t0 + H
    )
    made = np.array([t0 + 5 * MIN, t0 + 35 * MIN, t0 + 50 * MIN])
    counts = CycleCounts(made, [1, 1, 1], [0, 0, 1])
    r = compute_oee(timeline, counts, window=(t0, t0 + H), ideal_cycle_time_s=60)
    assert r.pdot_ns == 10 * MIN and r.pbt_ns == 50 * MIN and r.apt_ns == 50 * MIN
    assert r.produced == 3 and r.good == 2 and r.outside_planned_count == 1
    assert r.performance == pytest.approx(3 * 60 / 3000)


def test_no_data_before_the_first_state_and_after_a_closed_timeline() -> None:
    t0 = DAY
    timeline = StateTimeline.from_names([t0 + 10 * MIN], ["running"], end_ns=t0 + 50 * MIN)
    r = compute_oee(timeline, CycleCounts.empty(), window=(t0, t0 + H), ideal_cycle_time_s=1)
    assert r.no_data_ns == 20 * MIN and r.apt_ns == 40 * MIN
    assert r.availability == pytest.approx(40 / 60)
    assert r.six_big_losses()["equipment_failure_s"] == 20 * 60


def test_start_up_rejects_follow_a_setup() -> None:
    t0 = DAY
    timeline = StateTimeline.from_names(
        [t0, t0 + 20 * MIN, t0 + 30 * MIN], ["running", "setup", "running"], end_ns=t0 + H
    )
    t = np.array([t0 + 5 * MIN, t0 + 31 * MIN, t0 + 33 * MIN, t0 + 50 * MIN])
    counts = CycleCounts(t, [0, 0, 0, 1], [1, 1, 1, 0])
    r = compute_oee(timeline, counts, window=(t0, t0 + H), ideal_cycle_time_s=30, startup_s=5 * 60)
    assert r.asut_ns == 10 * MIN and r.rejected == 3 and r.startup_rejected == 2
    losses = r.six_big_losses()
    assert losses["startup_rejects_s"] == pytest.approx(60)
    assert losses["process_defects_s"] == pytest.approx(30)


def test_zero_planned_time_is_undefined_with_a_reason_not_an_error() -> None:
    day = ShiftCalendar.parse(SHIFTS_UTC).local_date(DAY).isoformat()
    calendar = ShiftCalendar.parse(f'holidays = ["{day}"]\n' + SHIFTS_UTC)
    timeline, counts = worked_example()
    r = compute_oee(
        timeline, counts, window=(DAY, DAY + 24 * H), ideal_cycle_time_s=1.0, shifts=calendar
    )
    assert r.pbt_ns == 0 and r.availability is None and r.oee is None
    assert "no planned busy time" in r.why_undefined()["availability"]
    assert r.outside_planned_count == 19_271 and r.produced == 0
    assert r.teep == 0.0  # no fully productive time over a full day of calendar time
    json.dumps(r.to_dict())  # None, not NaN: valid JSON


def test_empty_window() -> None:
    timeline, counts = worked_example()
    r = compute_oee(timeline, counts, window=(DAY, DAY), ideal_cycle_time_s=1.0)
    assert r.calendar_ns == 0
    for name in ("availability", "performance", "quality", "oee", "teep", "utilisation"):
        assert getattr(r, name) is None
        assert r.why_undefined()[name]


def test_empty_timeline_is_all_no_data() -> None:
    empty = StateTimeline(np.zeros(0, np.int64), np.zeros(0, np.int8), None)
    r = compute_oee(empty, CycleCounts.empty(), window=(DAY, DAY + H), ideal_cycle_time_s=1)
    assert r.no_data_ns == H and r.availability == 0.0 and r.oee == 0.0
    assert r.why_undefined()["quality"] == "nothing produced"


def test_without_ideal_cycle_time_only_performance_based_ratios_are_undefined() -> None:
    timeline, counts = worked_example()
    r = compute_oee(timeline, counts, window=(DAY, DAY + 24 * H), ideal_cycle_time_s=None)
    assert r.performance is None and r.oee is None and r.teep is None
    assert r.availability is not None and r.quality == pytest.approx(18_848 / 19_271)
    assert "ideal cycle time" in r.why_undefined()["oee"]
    d = r.to_dict()
    assert d["ratios"]["oee"] is None and d["undefined"]["performance"]
    assert d["losses"]["reduced_speed_s"] is None


def test_opc_40001_mapping() -> None:
    assert from_opc40001("Executing", "Processing") is MachineState.RUNNING
    assert from_opc40001("Executing", "Setup") is MachineState.SETUP
    assert from_opc40001("NotExecuting", "Setup") is MachineState.SETUP
    assert from_opc40001("NotExecuting", "Processing") is MachineState.IDLE
    assert from_opc40001("OutOfService", "None") is MachineState.BREAKDOWN
    assert from_opc40001("Executing", "Maintenance") is MachineState.BREAKDOWN
    assert from_opc40001("NotAvailable") is MachineState.NO_DATA
    assert from_opc40001(3, 3) is MachineState.RUNNING
    with pytest.raises(ValueError, match="MachineryItemState"):
        from_opc40001("Sleeping")


def test_state_names_and_reason_encoding() -> None:
    assert state_code("Planned-Stop") is MachineState.PLANNED_STOP
    assert state_code("fault") is MachineState.BREAKDOWN
    with pytest.raises(ValueError, match="runing"):
        state_code("runing")
    codes, names = encode_reasons(["", "die_change", "minor_stop", "die_change", None])
    assert codes.tolist() == [0, 1, 2, 1, 0] and names == {1: "die_change", 2: "minor_stop"}


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        StateTimeline.from_names([2, 1], ["running", "idle"])
    with pytest.raises(ValueError, match=r"codes 0\.\.7"):
        StateTimeline(np.array([1, 2]), np.array([0, 9]), None)
    with pytest.raises(ValueError, match="integer nanoseconds"):
        StateTimeline(np.array([1.5]), np.array([0]), None)
    with pytest.raises(ValueError, match=r"counts good\[1\]"):
        CycleCounts(np.array([1, 2]), [1.0, float("nan")], [0.0, 0.0])
    with pytest.raises(ValueError, match="sorted"):
        CycleCounts(np.array([2, 1]), [1, 1], [0, 0])
    timeline, counts = worked_example()
    with pytest.raises(ValueError, match="before start"):
        compute_oee(timeline, counts, window=(DAY + 1, DAY), ideal_cycle_time_s=1.0)
    with pytest.raises(ValueError, match="ideal cycle time"):
        compute_oee(timeline, counts, window=(DAY, DAY + 1), ideal_cycle_time_s=0.0)
    with pytest.raises(ValueError, match="startup_s"):
        compute_oee(timeline, counts, window=(DAY, DAY + 1), ideal_cycle_time_s=1, startup_s=-5)
    with pytest.raises(ValueError, match="microstop_s"):
        compute_oee(timeline, counts, window=(DAY, DAY + 1), ideal_cycle_time_s=1, microstop_s=-1)


def test_counters_with_a_reset() -> None:
    c = CycleCounts.from_counters([0, 10, 20, 30], [100, 110, 5, 9], [1, 1, 2, 2])
    assert c.time_ns.tolist() == [10, 20, 30]
    assert c.good.tolist() == [10, 5, 4]  # the reset to 5 counts 5 made since the reset
    assert c.reject.tolist() == [0, 1, 0]
    r = CycleCounts.from_results([1, 2, 3], ["ok", "NG", True])
    assert r.good.tolist() == [1, 0, 1] and r.reject.tolist() == [0, 1, 0]


def test_result_to_dict_is_json_and_carries_the_raw_elements() -> None:
    timeline, counts = worked_example()
    r = compute_oee(
        timeline,
        counts,
        window=(DAY, DAY + 24 * H),
        ideal_cycle_time_s=1.0,
        shifts=ShiftCalendar.parse(SHIFTS_UTC),
        scope="e/s/l/a",
    )
    d = json.loads(json.dumps(r.to_dict()))
    assert d["apt_ns"] == 373 * MIN and d["elements_s"]["apt"] == 373 * 60
    assert d["ratios"]["oee"] == pytest.approx(r.oee) and d["scope"] == "e/s/l/a"
    assert d["downtime_by_reason"] == [{"reason": 7, "seconds": 47 * 60.0}]
