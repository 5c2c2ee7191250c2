"""Roll-ups are time-weighted sums, never means of ratios."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.oee import CycleCounts, StateTimeline, by_day, by_shift, compute_oee
from analytics.rollup import rollup, rollup_hierarchy
from analytics.shifts import ShiftCalendar

S = 1_000_000_000
H = 3600 * S
T0 = 1_764_000_000 * S


def press(planned_h: float, run_h: float, made: int, good: int, scope: str, cycle_s: float):
    """One asset's result: planned for ``planned_h``, running the first ``run_h`` of it."""
    end = T0 + int(planned_h * H)
    timeline = StateTimeline.from_names(
        [T0, T0 + int(run_h * H)], ["running", "breakdown"], end_ns=end
    )
    t = T0 + np.arange(made, dtype=np.int64) * (int(run_h * H) // made)  # exact int ns
    g = np.zeros(made)
    g[:good] = 1
    counts = CycleCounts(t, g, 1 - g)
    return compute_oee(timeline, counts, window=(T0, end), ideal_cycle_time_s=cycle_s, scope=scope)


def test_rollup_is_time_weighted_not_a_mean_of_ratios() -> None:
    # Press A: planned 8 h, ran 8 h at ideal speed, all good: OEE 1.0.
    a = press(8, 8, made=960, good=960, scope="e1/s/l/press-a", cycle_s=30)
    # Press B: planned 1 h, ran 0.5 h at ideal speed, all good: OEE 0.5.
    b = press(1, 0.5, made=60, good=60, scope="e1/s/l/press-b", cycle_s=30)
    assert a.oee == pytest.approx(1.0) and b.oee == pytest.approx(0.5)
    line = rollup([a, b], scope="e1/s/l")
    mean_of_ratios = (a.oee + b.oee) / 2
    # Fully productive time (8 h + 0.5 h) over planned busy time (9 h):
    assert line.oee == pytest.approx(8.5 / 9)
    assert line.availability == pytest.approx(8.5 / 9)
    assert abs(line.oee - mean_of_ratios) > 0.19  # 0.944 vs 0.75: the mean would mislead
    assert line.pbt_ns == a.pbt_ns + b.pbt_ns and line.produced == 1020
    assert line.parts == 2 and line.scope == "e1/s/l"


def test_assets_with_different_cycle_times_weigh_quality_by_ideal_time() -> None:
    slow = press(8, 8, made=100, good=50, scope="e/s/l/slow", cycle_s=90)  # Q 0.5
    fast = press(8, 8, made=900, good=900, scope="e/s/l/fast", cycle_s=10)  # Q 1.0
    both = rollup([slow, fast])
    # quality weighted by the ideal time each piece needs: (50*90 + 900*10)/(100*90 + 900*10)
    assert both.quality == pytest.approx((50 * 90 + 900 * 10) / (100 * 90 + 900 * 10))
    assert both.oee == pytest.approx(
        (slow.oee * slow.pbt_ns + fast.oee * fast.pbt_ns) / (slow.pbt_ns + fast.pbt_ns)
    )


def test_hierarchy_asset_line_site_enterprise_town() -> None:
    results = [
        press(8, 6, 100, 90, "e1/s1/forming/p1", 90),
        press(8, 7, 100, 95, "e1/s1/forming/p2", 90),
        press(8, 8, 100, 99, "e1/s2/forming/p1", 90),
        press(8, 4, 100, 80, "e2/s1/forming/p1", 90),
    ]
    tree = rollup_hierarchy(results)
    assert set(tree) == {
        "e1/s1/forming/p1", "e1/s1/forming/p2", "e1/s2/forming/p1", "e2/s1/forming/p1",
        "e1/s1/forming", "e1/s2/forming", "e2/s1/forming", "e1/s1", "e1/s2", "e2/s1",
        "e1", "e2", "",
    }  # fmt: skip
    assert tree[""].apt_ns == sum(r.apt_ns for r in results)
    assert tree["e1"].apt_ns == sum(r.apt_ns for r in results[:3])
    assert tree["e1/s1"].good == 185 and tree["e1/s1"].parts == 2
    # town = roll-up of enterprises = roll-up of assets (associative)
    assert rollup([tree["e1"], tree["e2"]]).oee == pytest.approx(tree[""].oee)
    with pytest.raises(ValueError, match="asset path"):
        rollup_hierarchy([press(1, 1, 1, 1, "not-a-path", 1)])


def test_the_same_asset_period_twice_is_refused() -> None:
    a = press(8, 8, 10, 10, "e/s/l/a", 1)
    with pytest.raises(ValueError, match="twice"):
        rollup([a, a])


def test_empty_and_undefined_parts() -> None:
    empty = rollup([])
    assert empty.oee is None and empty.parts == 0 and empty.why_undefined()["oee"]
    a = press(8, 8, 10, 10, "e/s/l/a", 1)
    unknown = compute_oee(
        StateTimeline.from_names([T0], ["running"]),
        CycleCounts.empty(),
        window=(T0, T0 + H),
        ideal_cycle_time_s=None,
        scope="e/s/l/b",
    )
    mixed = rollup([a, unknown])
    # one part without an ideal cycle time would flatter performance: undefined, with a reason
    assert mixed.performance is None and "ideal cycle time" in mixed.why_undefined()["oee"]
    assert mixed.availability == pytest.approx(1.0)


SHIFTS = """
timezone = "Asia/Shanghai"
[[shift]]
name = "A"
start = "08:00"
end = "16:00"
breaks = [{ start = "12:00", end = "12:30" }]
[[shift]]
name = "B"
start = "16:00"
end = "00:00"
"""


def test_shift_to_day() -> None:
    calendar = ShiftCalendar.parse(SHIFTS)
    midnight = 1_763_913_600 * S  # 2025-11-24 00:00 Asia/Shanghai (16:00 UTC the day before)
    assert calendar.local_date(midnight).isoformat() == "2025-11-24"
    timeline = StateTimeline.from_names(
        [midnight, midnight + 9 * H, midnight + 10 * H, midnight + 20 * H],
        ["running", "breakdown", "running", "idle"],
        [0, 4, 0, 2],
    )
    t = midnight + np.arange(0, 48 * 3600, 60, dtype=np.int64) * S
    counts = CycleCounts(t, np.ones(t.size), np.zeros(t.size))
    window = (midnight, midnight + 2 * 86400 * S)
    shifts = by_shift(timeline, counts, window=window, shifts=calendar, ideal_cycle_time_s=60)
    assert [r.period for r in shifts] == [
        "2025-11-24/A", "2025-11-24/B", "2025-11-25/A", "2025-11-25/B",
    ]  # fmt: skip
    days = by_day(timeline, counts, window=window, shifts=calendar, ideal_cycle_time_s=60)
    assert [d.period for d in days] == ["2025-11-24", "2025-11-25"]
    first = days[0]
    assert first.calendar_ns == 24 * H and first.pbt_ns == 15.5 * H
    assert first.adet_ns == H and first.adot_ns == 4 * H
    assert first.apt_ns == shifts[0].apt_ns + shifts[1].apt_ns
    # the day equals a direct computation over the day with the calendar
    direct = compute_oee(
        timeline,
        counts,
        window=(midnight, midnight + 86400 * S),
        shifts=calendar,
        ideal_cycle_time_s=60,
    )
    assert (first.apt_ns, first.pbt_ns, first.produced) == (
        direct.apt_ns,
        direct.pbt_ns,
        direct.produced,
    )
    assert first.teep == pytest.approx(direct.teep)
    assert first.downtime_by_reason == ((2, 4 * H), (4, H))
