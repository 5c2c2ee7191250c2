"""Kiln OEE: rate-based performance against the nameplate, quality from late gradings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.oee import Gradings, KilnPushes, StateTimeline, compute_kiln_oee
from analytics.rollup import rollup

S = 1_000_000_000
H = 3600 * S
T0 = 1_764_000_000 * S
DAY = (T0, T0 + 24 * H)


def pushes(n: int, every_s: int, first_id: int = 1, tonnes: float = 1.0) -> KilnPushes:
    t = T0 + np.arange(n, dtype=np.int64) * every_s * S
    return KilnPushes(t, np.arange(first_id, first_id + n), np.full(n, tonnes))


def grade(ids, good, reject, at_ns) -> Gradings:
    n = len(ids)
    return Gradings(
        np.asarray(ids), np.full(n, good, float), np.full(n, reject, float), np.full(n, at_ns)
    )


def test_rate_based_performance_and_availability() -> None:
    # Nameplate 1.2 cars/h (core/shangbu.toml): ideal 50 min a car. A 2-hour burner fault;
    # the kiln pushed 20 cars in the 22 h it fired.
    timeline = StateTimeline.from_names(
        [T0, T0 + 10 * H, T0 + 12 * H], ["running", "breakdown", "running"], end_ns=DAY[1]
    )
    cars = pushes(20, 3600)
    result = compute_kiln_oee(
        timeline, cars, grade(range(1, 21), 95, 5, T0 + 30 * H), window=DAY,
        nameplate_per_hour=1.2, scope="xinghai/plant-1/firing-shop/kiln-2",
    )  # fmt: skip
    assert result.availability == pytest.approx(22 / 24)
    assert result.performance == pytest.approx(20 / (22 * 1.2))
    assert result.quality == pytest.approx(0.95)
    assert result.oee == pytest.approx(20 * 50 * 60 * 0.95 / (24 * 3600))
    assert result.unit == "car" and result.graded_share == 1.0 and result.notes == ()
    assert result.throughput_per_h == pytest.approx(20 / 24)


def test_quality_arrives_late_and_the_result_recomputes() -> None:
    cars = pushes(24, 3600)  # 24 cars in the day at 1 car/h
    first_half = grade(range(1, 13), 90, 10, T0 + 26 * H)  # graded the next morning
    second_half = grade(range(13, 25), 100, 0, T0 + 40 * H)
    everything = Gradings(
        *(np.concatenate((getattr(first_half, f), getattr(second_half, f)))
          for f in ("car_id", "good", "reject", "graded_ns"))
    )  # fmt: skip
    kw = dict(window=DAY, nameplate_per_hour=1.2)

    # At the end of the firing day nothing is graded: quality and OEE wait, with a reason.
    at_end = compute_kiln_oee(None, cars, everything, as_of_ns=DAY[1], **kw)
    assert at_end.quality is None and at_end.oee is None
    assert "grading" in at_end.why_undefined()["oee"]
    assert at_end.availability == 1.0 and at_end.performance == pytest.approx(24 / 28.8)

    # Next morning half is graded: provisional quality from the graded half.
    morning = compute_kiln_oee(None, cars, everything, as_of_ns=T0 + 30 * H, **kw)
    assert morning.quality == pytest.approx(0.9) and morning.graded_share == 0.5
    assert "provisional" in morning.notes[0]

    # All graded: final. Same function, same inputs plus the new grading.
    final = compute_kiln_oee(None, cars, everything, **kw)
    assert final.quality == pytest.approx((12 * 90 + 12 * 100) / (24 * 100))
    assert final.oee == pytest.approx(final.availability * final.performance * final.quality)
    assert final.notes == ()


def test_a_regrade_replaces_the_earlier_grading_of_the_same_car() -> None:
    cars = pushes(2, 3600)
    g = Gradings(
        np.array([1, 2, 1]), np.array([50.0, 100, 98]), np.array([50.0, 0, 2]),
        np.array([T0 + 30 * H, T0 + 30 * H, T0 + 31 * H]),
    )  # fmt: skip
    r = compute_kiln_oee(None, cars, g, window=DAY, nameplate_per_hour=1.2)
    assert r.quality == pytest.approx((98 + 100) / 200)
    before = compute_kiln_oee(None, cars, g, window=DAY, nameplate_per_hour=1.2,
                              as_of_ns=T0 + 30 * H)  # fmt: skip
    assert before.quality == pytest.approx((50 + 100) / 200)


def test_tonnes_and_roll_up_with_presses_by_ideal_time() -> None:
    cars = pushes(10, 7200, tonnes=2.5)  # 25 t in a day against a 1.5 t/h nameplate
    g = grade(range(1, 11), 97, 3, T0 + 30 * H)
    r = compute_kiln_oee(None, cars, g, window=DAY, nameplate_per_hour=1.5, unit="t")
    assert r.produced == 25.0 and r.unit == "t"
    assert r.performance == pytest.approx(25 / (24 * 1.5))
    other = compute_kiln_oee(None, pushes(24, 3600, 100), grade(range(100, 124), 1, 0, 0),
                             window=DAY, nameplate_per_hour=1.2, scope="k2")  # fmt: skip
    both = rollup([r, other])
    assert both.unit == "mixed"
    assert both.oee == pytest.approx((r.oee + other.oee) / 2)  # equal PBT: plain mean here


def test_pushes_outside_planned_time_and_bad_nameplate() -> None:
    timeline = StateTimeline.from_names(
        [T0, T0 + 12 * H], ["running", "planned_stop"], end_ns=DAY[1]
    )
    r = compute_kiln_oee(
        timeline, pushes(24, 3600), Gradings.empty(), window=DAY, nameplate_per_hour=1.2
    )
    assert r.produced == 12 and r.outside_planned_count == 12  # from 12 h on: PDOT
    assert r.pbt_ns == 12 * H and r.quality is None
    with pytest.raises(ValueError, match="nameplate"):
        compute_kiln_oee(None, pushes(1, 1), Gradings.empty(), window=DAY, nameplate_per_hour=0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 50), st.integers(0, 5)), max_size=40),
    st.integers(1, 40),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_kiln_quality_matches_a_plain_reference(
    grades: list[tuple[int, int, int]], n_cars: int, as_of_h: int | None
) -> None:
    """Gradings in any order, re-grades, ungraded cars, gradings for cars outside the window."""
    cars = pushes(n_cars, 1800)  # car i pushed at i/2 h, ids 1..n
    g = Gradings(
        np.array([c for c, _, _ in grades], np.int64),
        np.array([float(x) for _, x, _ in grades]),
        np.array([float(r) for _, _, r in grades]),
        T0 + np.arange(len(grades), dtype=np.int64) * H,  # the i-th grading at i h
    )
    as_of = None if as_of_h is None else T0 + as_of_h * H
    r = compute_kiln_oee(None, cars, g, window=DAY, nameplate_per_hour=1.2, as_of_ns=as_of)
    latest: dict[int, tuple[int, int]] = {}
    for i, (car, good, bad) in enumerate(grades):  # later gradings replace earlier ones
        if as_of is None or T0 + i * H <= as_of:
            latest[car] = (good, bad)
    pushed = set(range(1, n_cars + 1))
    graded = {c: v for c, v in latest.items() if c in pushed and sum(v) > 0}
    assert r.produced == n_cars and r.produced_graded == len(graded)
    pieces = sum(a + b for a, b in graded.values())
    if graded:
        assert r.quality == pytest.approx(sum(a for a, _ in graded.values()) / pieces)
    else:
        assert r.quality is None and r.oee is None
