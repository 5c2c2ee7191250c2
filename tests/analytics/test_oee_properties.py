"""Property tests: the vectorised OEE core against a slow, obvious reference, and additivity.

The reference walks the events with Python loops (allowed here, and only here): it cuts the
window at every state change and plan edge, asks for each piece "which state, which plan?"
by scanning lists, and adds up. Times are small integers so every case is exact.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.oee import (
    CycleCounts,
    MachineState,
    StateTimeline,
    by_shift,
    compute_oee,
)
from analytics.rollup import rollup
from analytics.shifts import ShiftCalendar

S = 1_000_000_000
STOPS = {MachineState.IDLE, MachineState.STARVED, MachineState.BLOCKED, MachineState.BREAKDOWN}


def reference(
    starts: list[int],
    states: list[int],
    reasons: list[int],
    end_ns: int | None,
    counts: list[tuple[int, float, float]],
    window: tuple[int, int],
    pot: list[tuple[int, int]],
    pdot: list[tuple[int, int]],
    microstop_ns: int,
) -> dict[str, float]:
    ws, we = window
    n = len(starts)
    ends = [*starts[1:], end_ns if end_ns is not None else None]
    # 1. minor stops: consecutive unplanned-stop intervals, judged on their full length.
    micro = [False] * n
    i = 0
    while i < n:
        if states[i] in STOPS:
            j = i
            while j + 1 < n and states[j + 1] in STOPS:
                j += 1
            if ends[j] is not None and ends[j] - starts[i] < microstop_ns:
                for k in range(i, j + 1):
                    micro[k] = True
            i = j + 1
        else:
            i += 1

    def state_at(t: int) -> tuple[int | None, int]:
        for k in range(n):
            end = ends[k] if ends[k] is not None else float("inf")
            if starts[k] <= t < end:
                return k, states[k]
        return None, MachineState.NO_DATA

    def inside(t: int, intervals: list[tuple[int, int]]) -> bool:
        return any(a <= t < b for a, b in intervals)

    cuts = {ws, we}
    for t in [*starts, *(e for e in ends if e is not None)]:
        if ws < t < we:
            cuts.add(t)
    for a, b in [*pot, *pdot]:
        for t in (a, b):
            if ws < t < we:
                cuts.add(t)
    edges = sorted(cuts)
    out = dict.fromkeys(
        ("pot_ns", "pdot_ns", "pbt_ns", "apt_ns", "microstop_ns", "asut_ns", "adot_ns",
         "adet_ns", "no_data_ns", "reasoned_down_ns"), 0,
    )  # fmt: skip
    for a, b in itertools.pairwise(edges):
        if not inside(a, pot):
            continue
        out["pot_ns"] += b - a
        k, state = state_at(a)
        if inside(a, pdot) or state == MachineState.PLANNED_STOP:
            out["pdot_ns"] += b - a
            continue
        out["pbt_ns"] += b - a
        if state == MachineState.RUNNING or (k is not None and micro[k]):
            out["apt_ns"] += b - a
            if state != MachineState.RUNNING:
                out["microstop_ns"] += b - a
            continue
        key = {
            MachineState.SETUP: "asut_ns",
            MachineState.BREAKDOWN: "adet_ns",
            MachineState.NO_DATA: "no_data_ns",
        }.get(state, "adot_ns")
        out[key] += b - a
        if key != "no_data_ns" and reasons[k] != 0:
            out["reasoned_down_ns"] += b - a
    good = bad = outside = 0.0
    for t, g, r in counts:
        if not ws <= t < we:
            continue
        _, state = state_at(t)
        if inside(t, pot) and not inside(t, pdot) and state != MachineState.PLANNED_STOP:
            good += g
            bad += r
        else:
            outside += g + r
    out.update(good=good, rejected=bad, outside_planned_count=outside)
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n = draw(st.integers(0, 25))
    gaps = draw(st.lists(st.integers(1, 400), min_size=n, max_size=n))
    first = draw(st.integers(-200, 300))
    starts = [first + sum(gaps[:i]) for i in range(n)]
    states = draw(st.lists(st.sampled_from(list(MachineState)), min_size=n, max_size=n))
    reasons = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    closed = draw(st.booleans())
    end_ns = (starts[-1] + draw(st.integers(0, 300))) if (n and closed) else None
    ws = draw(st.integers(-100, 500))
    we = ws + draw(st.integers(0, 3000))
    times = sorted(draw(st.lists(st.integers(ws - 100, we + 100), max_size=40)))
    counts = [(t, float(draw(st.integers(0, 3))), float(draw(st.integers(0, 2)))) for t in times]

    def intervals(max_n: int) -> list[tuple[int, int]]:
        k = draw(st.integers(0, max_n))
        out = []
        for _ in range(k):
            a = draw(st.integers(ws - 200, we + 200))
            out.append((a, a + draw(st.integers(1, 1500))))
        return out

    planned = draw(st.booleans())
    pot = intervals(4) if planned else [(ws, we)]
    pdot = intervals(3) if planned else []
    return dict(
        starts=starts, states=[int(s) for s in states], reasons=reasons, end_ns=end_ns,
        counts=counts, window=(ws, we), pot=pot, pdot=pdot,
        microstop_ns=draw(st.integers(0, 500)),
    )  # fmt: skip


class _FixedPlan:
    """A stand-in calendar with given POT and PDOT intervals (the OEE core's seam to the
    shift calendar is ``planned(start_ns, end_ns)``)."""

    def __init__(self, pot: list[tuple[int, int]], pdot: list[tuple[int, int]]) -> None:
        self.pot, self.pdot = pot, pdot

    def planned(self, start_ns: int, end_ns: int):
        from analytics.shifts import planned_step

        return planned_step(start_ns, end_ns, self.pot, self.pdot)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_vectorised_core_matches_the_reference(case: dict) -> None:
    timeline = StateTimeline(
        np.array(case["starts"], np.int64),
        np.array(case["states"], np.int8),
        np.array(case["reasons"], np.int32),
        case["end_ns"],
    )
    c = case["counts"]
    counts = CycleCounts(
        np.array([t for t, _, _ in c], np.int64),
        np.array([g for _, g, _ in c]),
        np.array([r for _, _, r in c]),
    )
    # microstop threshold in seconds; the reference works in ns
    r = compute_oee(
        timeline,
        counts,
        window=case["window"],
        ideal_cycle_time_s=2.0,
        shifts=_FixedPlan(case["pot"], case["pdot"]),
        microstop_s=case["microstop_ns"] / S,
    )
    ref = reference(**case)
    got = {k: getattr(r, k) for k in ref}
    assert got == ref
    # elements partition planned busy time; availability never exceeds 1
    assert r.apt_ns + r.asut_ns + r.adot_ns + r.adet_ns + r.no_data_ns == r.pbt_ns
    assert r.pbt_ns + r.pdot_ns == r.pot_ns <= r.calendar_ns
    assert r.availability is None or 0.0 <= r.availability <= 1.0
    assert r.produced == r.good + r.rejected
    losses = r.six_big_losses()
    if all(v is not None for v in losses.values()):  # they account for all of PBT
        assert abs(sum(losses.values()) - r.pbt_ns / S) <= 1e-6 * max(1.0, r.pbt_ns / S)
    if r.oee is not None and r.performance is not None and r.quality is not None:
        product = r.availability * r.performance * r.quality
        assert abs(r.oee - product) <= 1e-9 * max(1.0, abs(r.oee))


SHIFTS = """
timezone = "Asia/Shanghai"
[[shift]]
name = "A"
start = "06:00"
end = "14:00"
breaks = [{ start = "10:00", end = "10:30" }]
[[shift]]
name = "B"
start = "14:00"
end = "22:00"
[[shift]]
name = "C"
start = "22:00"
end = "06:00"
breaks = [{ start = "02:00", end = "02:20" }]
"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(1, 4 * 3600), min_size=1, max_size=60),
    st.lists(st.sampled_from(list(MachineState)), min_size=60, max_size=60),
    st.lists(st.integers(0, 3 * 86400 - 1), max_size=200),
    st.integers(0, 86400),
    st.integers(3600, 2 * 86400),
)
def test_shifts_roll_up_to_the_whole_window(
    gaps: list[int], states: list[MachineState], count_s: list[int], off: int, length: int
) -> None:
    """Sum of per-shift results == the result over the whole window (additivity)."""
    calendar = ShiftCalendar.parse(SHIFTS)
    t0 = 1_764_000_000 * S
    starts = t0 + np.cumsum([0, *gaps[:-1]]).astype(np.int64) * S
    timeline = StateTimeline(
        starts, np.array(states[: len(gaps)], np.int8), np.ones(len(gaps), np.int32)
    )
    t = np.sort(t0 + np.array(count_s, np.int64) * S)
    counts = CycleCounts(t, np.ones(t.size), np.zeros(t.size))
    window = (t0 + off * S, t0 + (off + length) * S)
    kw = dict(ideal_cycle_time_s=30.0, microstop_s=300.0)
    whole = compute_oee(timeline, counts, window=window, shifts=calendar, **kw)
    parts = by_shift(timeline, counts, window=window, shifts=calendar, **kw)
    total = rollup(parts)
    for name in ("pot_ns", "pdot_ns", "pbt_ns", "apt_ns", "asut_ns", "adot_ns", "adet_ns",
                 "no_data_ns", "microstop_ns", "produced", "good", "reasoned_down_ns"):  # fmt: skip
        assert getattr(total, name) == getattr(whole, name), name
    assert total.oee == whole.oee or abs(total.oee - whole.oee) < 1e-12


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(st.integers(0, 3000), max_size=6))
def test_any_split_of_a_window_rolls_up_to_the_whole(case: dict, cuts: list[int]) -> None:
    """Additivity for arbitrary cut points: the sum of the pieces is the whole, exactly."""
    timeline = StateTimeline(
        np.array(case["starts"], np.int64),
        np.array(case["states"], np.int8),
        np.array(case["reasons"], np.int32),
        case["end_ns"],
    )
    c = case["counts"]
    counts = CycleCounts(
        np.array([t for t, _, _ in c], np.int64),
        np.array([g for _, g, _ in c]),
        np.array([r for _, _, r in c]),
    )
    ws, we = case["window"]
    points = sorted({ws, we, *(min(max(ws + x, ws), we) for x in cuts)})
    plan = _FixedPlan(case["pot"], case["pdot"])
    kw = dict(ideal_cycle_time_s=2.0, shifts=plan, microstop_s=case["microstop_ns"] / S)
    whole = compute_oee(timeline, counts, window=(ws, we), **kw)
    pieces = [
        compute_oee(timeline, counts, window=(a, b), scope="a", period=str(a), **kw)
        for a, b in itertools.pairwise(points)
    ]
    total = rollup(pieces)
    for name in ("calendar_ns", "pot_ns", "pdot_ns", "pbt_ns", "apt_ns", "asut_ns", "adot_ns",
                 "adet_ns", "no_data_ns", "microstop_ns", "produced", "good",
                 "outside_planned_count", "reasoned_down_ns"):  # fmt: skip
        assert getattr(total, name) == getattr(whole, name), name
    assert dict(total.downtime_by_reason) == dict(whole.downtime_by_reason)
