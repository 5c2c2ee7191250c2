"""Stored series (as the agent writes them) to OEE inputs: bad values counted, the rest used."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.oee import compute_oee
from analytics.oee_model import MachineState
from analytics.oee_series import (
    counts_from_counters,
    counts_from_results,
    pushes_from_counter,
    timeline_from_series,
)

S = 1_000_000_000


def test_states_with_reasons_unknown_values_and_disorder() -> None:
    built = timeline_from_series(
        [30 * S, 0, 10 * S, 20 * S, 20 * S, 40 * S],
        ["running", "running", "idle", "runing", "breakdown", "setup"],
        reason_time_ns=[10 * S, 20 * S, 40 * S],
        reasons=["minor_stop", "hydraulic_leak", "die_change"],
        end_ns=50 * S,
    )
    tl = built.timeline
    assert tl.start_ns.tolist() == [0, 10 * S, 20 * S, 30 * S, 40 * S]
    assert tl.state.tolist() == [
        MachineState.RUNNING, MachineState.IDLE, MachineState.BREAKDOWN, MachineState.RUNNING,
        MachineState.SETUP,
    ]  # fmt: skip
    named = {built.reason_names.get(int(c), "") for c in tl.reason}
    assert named == {"", "minor_stop", "hydraulic_leak", "die_change"}
    assert built.skipped == {"unknown state 'runing'": 1}
    r = compute_oee(tl, counts_from_results([], []).counts, window=(0, 50 * S),
                    ideal_cycle_time_s=1, microstop_s=0)  # fmt: skip
    assert r.adet_ns == 10 * S and r.asut_ns == 10 * S and r.adot_ns == 10 * S
    names = {built.reason_names[c]: ns for c, ns in r.downtime_by_reason}
    assert names == {"minor_stop": 10 * S, "hydraulic_leak": 10 * S, "die_change": 10 * S}


def test_same_time_twice_keeps_the_later_row_and_says_so() -> None:
    built = timeline_from_series([0, 5, 5], ["running", "idle", "setup"])
    assert built.timeline.state.tolist() == [MachineState.RUNNING, MachineState.SETUP]
    assert built.skipped == {"state repeated at the same time (later row kept)": 1}


def test_cycle_results_and_counters() -> None:
    res = counts_from_results([3, 1, 2, 4], ["good", "reject", "ok", "??"])
    assert res.counts.time_ns.tolist() == [1, 2, 3]
    assert res.counts.good.tolist() == [0, 1, 1] and res.counts.reject.tolist() == [1, 0, 0]
    assert res.skipped == {"unknown cycle result '??'": 1}
    ctr = counts_from_counters(
        [0, 10, 20, 30, 40], [100, 110, float("nan"), 5, 8], [95, 104, 0, 5, 7]
    )
    # 100->110: 9 good 1 reject; NaN left out; reset to 5: 5 good since the reset; 5->8: 2 + 1
    assert ctr.counts.good.tolist() == [9, 5, 2] and ctr.counts.reject.tolist() == [1, 0, 1]
    assert ctr.skipped == {"bad counter sample": 1}


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 times for 1 values"):
        timeline_from_series(np.array([1, 2]), ["running"])
    with pytest.raises(ValueError, match="before the last state change"):
        timeline_from_series([10], ["running"], end_ns=5)


def test_kiln_pushes_from_the_car_push_counter() -> None:
    pushes, skipped = pushes_from_counter([0, 10, 20, 25, 30, 40], [5, 6, 8, -1, 2, 3])
    # 5->6: car 6; 6->8: cars 7, 8; -1 left out; reset to 2: two cars since, ids go on (9, 10)
    assert pushes.time_ns.tolist() == [10, 20, 20, 30, 30, 40]
    assert pushes.car_id.tolist() == [6, 7, 8, 9, 10, 11]
    assert skipped == {"bad car_push_count sample": 1}
    empty, _ = pushes_from_counter([0], [5])
    assert empty.time_ns.size == 0


def test_kiln_phases_are_production() -> None:
    phases = ["heating", "soaking", "cooling", "idle", "fault"]  # as the kiln simulator sends
    built = timeline_from_series([0, 1, 2, 3, 4], phases)
    assert built.timeline.state.tolist() == [
        MachineState.RUNNING, MachineState.RUNNING, MachineState.RUNNING, MachineState.IDLE,
        MachineState.BREAKDOWN,
    ]  # fmt: skip
