"""Firing conformance: worked examples a kiln engineer can check by hand, and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.cones import cone_equivalent, uniformity_class
from analytics.conformance import (
    ConformanceSettings,
    deviation_series,
    judge_firing,
    judge_firings,
)
from analytics.firing_clock import estimate_start_ns, programme_time_s
from analytics.programme import Programme
from core.reading import Quality

S = 1_000_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def ramp_hold() -> Programme:
    # 20 -> 620 °C at 60 °C/h (10 h), hold 1 h: 11 h in all.
    return Programme.from_segments(
        [{"kind": "ramp", "rate_c_h": 60, "target_c": 620}, {"kind": "hold", "hours": 1}]
    )


def minute_grid(hours: float) -> np.ndarray:
    return T0 + np.arange(0, int(hours * 3600) + 1, 60, dtype=np.int64) * S


def test_constant_offset_gives_hand_computed_metrics() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = np.vstack([sp + 5.0, sp - 2.0])
    r = judge_firing(p, t, temps, start_ns=T0, thermocouples=["z1", "z2"])
    a, b = r.thermocouples
    assert (a.max_abs_deviation_c, a.mean_abs_deviation_c, a.rms_deviation_c) == pytest.approx(
        (5.0, 5.0, 5.0)
    )
    assert b.mean_abs_deviation_c == pytest.approx(2.0)
    assert r.mean_abs_deviation_c == pytest.approx(3.5)
    assert r.rms_deviation_c == pytest.approx(np.sqrt((25 + 4) / 2))
    assert r.score == 1.0 and r.coverage == pytest.approx(1.0) and r.verdict == "conforming"
    ramp, hold = r.segments
    np.testing.assert_allclose(ramp.achieved_rate_c_h, [60.0, 60.0], rtol=1e-9)
    assert ramp.programmed_rate_c_h == 60 and hold.programmed_hold_s == 3600
    np.testing.assert_allclose(hold.soak_in_band_s, [3600.0, 3600.0], atol=31)
    assert a.peak_c == pytest.approx(625.0) and r.spread_max_c == pytest.approx(7.0)
    assert r.uniformity_c == pytest.approx(5.0) and r.uniformity_class == 2  # ±6 °C class
    json.dumps(r.to_dict(), allow_nan=False)


def test_excursion_found_with_start_end_and_worst() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = np.vstack([sp.copy(), sp.copy()])
    # 10 minutes from 5 h: 15 °C too hot, worst 18 °C at 5 h 04
    i = 300
    temps[1, i : i + 11] += 15.0
    temps[1, i + 4] += 3.0
    # a 1-minute blip stays below min_excursion_s (120 s)
    temps[0, 100] -= 40.0
    r = judge_firing(p, t, temps, start_ns=T0)
    assert r.verdict == "nonconforming"
    (e,) = r.excursions
    assert e.thermocouple == "tc2" and e.segment == 0
    assert e.start_ns == t[i] and e.end_ns == t[i + 10] and e.duration_s == 600
    assert e.worst_deviation_c == pytest.approx(18.0) and e.worst_ns == t[i + 4]
    assert e.alarm == "too_high"
    assert r.thermocouples[0].max_abs_deviation_c == pytest.approx(40.0)
    # share in band: 11 outside samples, each standing for its minute, of 660 minutes
    assert r.thermocouples[1].share_in_band == pytest.approx(1 - 11 / 660)


def test_gap_is_never_bridged_and_lowers_coverage() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = sp[None, :].copy()
    # 2 minutes outside the band just before a 2 h gap and 2 minutes just after it: two short
    # excursions, not one 2 h excursion.
    temps[0, 198:200] += 30
    temps[0, 320:322] += 30
    keep = np.ones(t.size, bool)
    keep[200:320] = False
    r = judge_firing(p, t[keep], temps[:, keep], start_ns=T0)
    assert r.excursions == ()
    assert r.coverage == pytest.approx(1 - 121 / 660, abs=1e-9)  # the gap interval is uncovered
    # the same gap bridged by a generous max_gap_s joins them into one 2 h excursion
    wide = ConformanceSettings(max_gap_s=3 * 3600)
    (e,) = judge_firing(p, t[keep], temps[:, keep], start_ns=T0, settings=wide).excursions
    assert e.duration_s == 123 * 60


def test_bad_quality_and_nan_samples_are_excluded() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = np.vstack([sp, sp])
    q = np.zeros(temps.shape, dtype=np.uint8)
    temps[0, 100:200] = 9999.0
    q[0, 100:200] = Quality.BAD
    temps[1, 50:60] = np.nan
    r = judge_firing(p, t, temps, q, start_ns=T0)
    assert r.verdict == "conforming" and r.max_abs_deviation_c == pytest.approx(0.0)
    assert r.thermocouples[0].valid_samples == t.size - 100
    assert r.thermocouples[0].coverage == pytest.approx(1 - 101 / 660)
    # UNCERTAIN counts when the settings allow it
    q[0, 100:200] = Quality.UNCERTAIN
    loose = ConformanceSettings(max_quality=Quality.UNCERTAIN)
    assert judge_firing(p, t, temps, q, start_ns=T0, settings=loose).excursions


@pytest.mark.parametrize("step_s", [60.0, 300.0])
def test_stall_follows_the_l_and_l_rule(step_s: float) -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    rng = np.random.default_rng(5)
    temps = sp[None, :] + rng.normal(0, 0.5, (2, t.size))
    # tc2 stops rising at 4 h for an hour, then catches up at the programmed rate (offset)
    stuck = (t >= T0 + 4 * 3600 * S) & (t < T0 + 5 * 3600 * S)
    temps[1, stuck] = sp[t == T0 + 4 * 3600 * S][0]
    after = t >= T0 + 5 * 3600 * S
    temps[1, after] -= 60.0
    r = judge_firing(p, t, temps, start_ns=T0, settings=ConformanceSettings(stall_step_s=step_s))
    assert [s.thermocouple for s in r.stalls] == ["tc2"]
    (stall,) = r.stalls
    # reported from the start of the first slow 22.5 min window (it may begin a few minutes
    # before the flat hour: the least-squares rate over it is already below 6.7 °C/h) to the
    # end of the last one (around the end of the flat hour, to within an evaluation step)
    assert T0 + (4 * 3600 - 1350) * S < stall.start_ns <= T0 + (4 * 3600 + step_s) * S
    assert T0 + (5 * 3600 - step_s) * S <= stall.end_ns < T0 + (5 * 3600 + 1350) * S
    assert stall.min_rate_c_h < 6.7 and stall.segment == 0


def test_stalls_report_each_thermocouples_own_slowest_rate_and_sample_times() -> None:
    """Noise-free curves whose slow stretches have known rates: tc2 flat for an hour (0 °C/h),
    tc3 speeding up from 1 to 5 °C/h over an hour (a window's least-squares rate is the rate
    at its middle). Each stall's slowest rate is its own thermocouple's slowest window, its
    ends are sample times, and a second firing a day later reports the same stalls a day on."""
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = np.vstack([sp, sp, sp])
    h = (t - T0) / (3600 * S)
    flat = (h >= 4) & (h < 5)
    temps[1, flat] = sp[h == 4][0]
    temps[1, h >= 5] -= 60.0
    slow = (h >= 6) & (h < 7)
    x = h[slow] - 6
    temps[2, slow] = sp[h == 6][0] + x + 2 * x * x
    temps[2, h >= 7] -= 57.0
    day = 86_400 * S
    reports = judge_firings(
        p, np.stack([t, t + day]), np.stack([temps, temps]), start_ns=[T0, T0 + day]
    )
    first, second = reports
    assert [(s.thermocouple, s.segment) for s in first.stalls] == [("tc2", 0), ("tc3", 0)]
    flat_rate, rising_rate = (s.min_rate_c_h for s in first.stalls)
    assert flat_rate == pytest.approx(0.0, abs=1e-6)
    # windows are whole 5 min blocks spanning 22.5 min to within a block, so the first one
    # wholly inside the slow hour is centred 8.75-16.25 min in: 1.58-2.08 °C/h (the last slow
    # windows run at 4-5 °C/h)
    assert 1.0 + 4 * 8.75 / 60 - 1e-6 <= rising_rate <= 1.0 + 4 * 16.25 / 60 + 1e-6
    for s in first.stalls:
        assert (s.start_ns - T0) % (60 * S) == 0 and (s.end_ns - T0) % (60 * S) == 0
        assert s.duration_s == (s.end_ns - s.start_ns) / S
    assert first.stalls[0].start_ns < T0 + 5 * 3600 * S < first.stalls[1].start_ns
    assert [(s.start_ns + day, s.end_ns + day, s.min_rate_c_h) for s in first.stalls] == [
        (s.start_ns, s.end_ns, s.min_rate_c_h) for s in second.stalls
    ]


def test_worked_cone_points_from_the_orton_table() -> None:
    c = cone_equivalent(
        np.array([1260.0, 1280.0, 1305.0, 1295.0, 1263.0, 1285.0, 1346.0]),
        np.array([60.0, 150.0, 150.0, 105.0, 150.0, 30.0, 150.0]),
    )
    np.testing.assert_allclose(c.cone, [9, 9, 10, 10, 8, 10, 13])
    assert c.rate_clamped.tolist() == [False] * 5 + [True, False]
    low = cone_equivalent(1200.0, 60.0)
    high = cone_equivalent(1400.0, 150.0)
    assert np.isnan(low.cone) and low.below_range and np.isnan(high.cone) and high.above_range
    # halfway between cone 9 (1260) and cone 10 (1285) at 60 °C/h
    assert cone_equivalent(1272.5, 60.0).cone == pytest.approx(9.5)


def test_cone_equivalent_of_a_firing_uses_the_last_100_c() -> None:
    p = Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 150, "target_c": 1185},
            {"kind": "ramp", "rate_c_h": 60, "target_c": 1285},
            {"kind": "natural_cool", "target_c": 100},
        ]
    )
    t = minute_grid(12)
    tp = programme_time_s(t, T0)
    temps = np.interp(tp, *p.breakpoints())  # follows the programme, holds last value
    r = judge_firing(p, t, temps, start_ns=T0)
    tc = r.thermocouples[0]
    assert tc.last_100c_rate_c_h == pytest.approx(60.0)
    assert tc.cone == pytest.approx(10.0) and r.cone_min == pytest.approx(10.0)


def test_uniformity_classes() -> None:
    assert uniformity_class(np.array([2.9, 3.0, 5.0, 8.0, 10.0, 14.0, 28.0, 28.1])).tolist() == [
        1,
        1,
        2,
        3,
        4,
        5,
        6,
        0,
    ]
    assert int(uniformity_class(np.nan)) == -1


def test_pause_freezes_the_setpoint() -> None:
    p = ramp_hold()
    t = minute_grid(12)
    pause = (T0 + 3 * 3600 * S, T0 + 4 * 3600 * S)
    tp = programme_time_s(t, T0, [pause])
    temps = p.setpoint_c(tp)[None, :]  # the kiln paused with its controller
    assert judge_firing(p, t, temps, start_ns=T0, pauses=[pause]).verdict == "conforming"
    assert judge_firing(p, t, temps, start_ns=T0).verdict == "nonconforming"
    # the pause is not a stall either, once declared
    assert judge_firing(p, t, temps, start_ns=T0, pauses=[pause]).stalls == ()


def test_late_start_is_estimated() -> None:
    p = ramp_hold()
    t = minute_grid(14)
    late = T0 + 2 * 3600 * S + 17 * 60 * S
    temps = p.setpoint_c(programme_time_s(t, late), before_start_c=p.start_c)
    noisy = temps + np.random.default_rng(1).normal(0, 1.0, (3, t.size))
    assert abs(estimate_start_ns(t, noisy, p) - late) <= 60 * S
    r = judge_firing(p, t, noisy, start_ns=estimate_start_ns(t, noisy, p))
    assert r.verdict == "conforming"


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_sample_are_undefined_not_errors(n: int) -> None:
    p = ramp_hold()
    t = minute_grid(1)[:n]
    r = judge_firing(p, t, np.full((2, n), 100.0), start_ns=T0)
    assert r.verdict == "undefined" and np.isnan(r.score) and r.coverage == 0
    doc = r.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["score"] is None


def test_all_bad_data_is_undefined() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    r = judge_firing(p, t, np.full((3, t.size), np.nan), start_ns=T0)
    assert r.verdict == "undefined" and r.excursions == () and r.stalls == ()
    assert np.isnan(r.cone_min) and r.uniformity_class == -1


def test_low_coverage_is_insufficient_data() -> None:
    p = ramp_hold()
    t = minute_grid(3)  # 3 h of an 11 h programme
    temps = p.setpoint_c(programme_time_s(t, T0))[None, :]
    assert judge_firing(p, t, temps, start_ns=T0).verdict == "insufficient data"


def test_wrong_inputs_raise_clear_errors() -> None:
    p = ramp_hold()
    t = minute_grid(1)
    with pytest.raises(ValueError, match="n_thermocouples"):
        judge_firing(p, t, np.zeros((2, t.size + 1)), start_ns=T0)
    with pytest.raises(ValueError, match="sorted"):
        judge_firing(p, t[::-1], np.zeros((1, t.size)), start_ns=T0)
    with pytest.raises(ValueError, match="int64"):
        judge_firing(p, t.astype(float), np.zeros((1, t.size)), start_ns=T0)
    with pytest.raises(ValueError, match="no thermocouple"):
        judge_firing(p, t, np.zeros((0, t.size)), start_ns=T0)
    with pytest.raises(ValueError, match="band_c"):
        ConformanceSettings(band_c=0)


def test_batched_matches_one_by_one_with_padding() -> None:
    p = ramp_hold()
    rng = np.random.default_rng(3)
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    f, k, n = 3, 4, t.size
    temps = sp[None, None, :] + rng.normal(0, 4, (f, k, n))
    lengths = np.array([n, n - 100, n - 300])
    times = np.repeat(t[None, :], f, axis=0)
    for i, m in enumerate(lengths):
        temps[i, :, m:] = np.nan
        times[i, m:] = 0  # padding may hold anything
    reports = judge_firings(p, times, temps, start_ns=[T0] * f, n_samples=lengths)
    for i, m in enumerate(lengths):
        one = judge_firing(p, t[:m], temps[i, :, :m], start_ns=T0)
        assert reports[i].to_dict() == one.to_dict()
    assert reports[2].coverage < reports[0].coverage


def test_deviation_series_marks_unjudged_samples() -> None:
    p = ramp_hold()
    t = T0 + np.array([-60, 0, 3600, 12 * 3600], dtype=np.int64) * S
    sp, d = deviation_series(p, t, np.array([[20.0, 25.0, 90.0, 30.0]]), start_ns=T0)
    assert np.isnan(sp[0]) and np.isnan(sp[3])
    np.testing.assert_allclose(d[0, 1:3], [5.0, 10.0])


def test_threaded_batch_keeps_order_and_results() -> None:
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = sp[None, None, :] + np.random.default_rng(9).normal(0, 6, (5, 3, t.size))
    times = np.repeat(t[None, :], 5, axis=0)
    one = judge_firings(p, times, temps, start_ns=[T0] * 5)
    many = judge_firings(p, times, temps, start_ns=[T0] * 5, workers=3)
    assert [r.to_dict() for r in many] == [r.to_dict() for r in one]
    assert len({r.score for r in one}) == 5  # five different firings, not one repeated
    with pytest.raises(ValueError, match="workers"):
        judge_firings(p, times, temps, start_ns=[T0] * 5, workers=0)


def test_excursion_alarm_classes_follow_the_segment() -> None:
    p = Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 100, "target_c": 620},
            {"kind": "hold", "hours": 1},
            {"kind": "cool", "rate_c_h": 100, "target_c": 320},
        ]
    )
    t = minute_grid(p.duration_s / 3600)
    tp = programme_time_s(t, T0)
    temps = p.setpoint_c(tp)[None, :].copy()
    for centre_h in (3.0, 6.5, 8.0):  # ramp, hold, cool: 20 minutes 20 °C low
        i = int(centre_h * 60)
        temps[0, i : i + 20] -= 20.0
    alarms = [(e.segment, e.alarm) for e in judge_firing(p, t, temps, start_ns=T0).excursions]
    assert alarms == [(0, "too_low_heating"), (1, "too_low_hold"), (2, "too_low_cooling")]


def test_stalls_with_irregular_sampling_and_a_gap() -> None:
    p = ramp_hold()
    rng = np.random.default_rng(11)
    t = T0 + np.cumsum(rng.uniform(5, 60, 3000)).astype(np.int64) * S
    t = t[t <= T0 + 11 * 3600 * S]
    keep = (t < T0 + 3 * 3600 * S) | (t > T0 + 4 * 3600 * S)  # an hour with no data at all
    t = t[keep]
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps = sp[None, :] + rng.normal(0, 0.5, (2, t.size))
    r = judge_firing(p, t, temps, start_ns=T0)
    assert r.stalls == ()  # the gap is not a stall: nothing is known inside it
    assert r.coverage == pytest.approx(1 - 1 / 11, abs=0.01)
    flat = (t > T0 + 6 * 3600 * S) & (t < T0 + 7 * 3600 * S)
    temps[0, flat] = temps[0, flat][0]
    stalls = judge_firing(p, t, temps, start_ns=T0).stalls
    assert [s.thermocouple for s in stalls] == ["tc1"]
    assert T0 + 5 * 3600 * S < stalls[0].start_ns < stalls[0].end_ns < T0 + 8 * 3600 * S


def test_thermocouples_sampled_at_different_instants_lose_nothing() -> None:
    """Readings of each thermocouple come with their own source timestamps; put on one time
    axis (the union) with NaN where a thermocouple has no sample, nothing is a gap."""
    p = ramp_hold()
    t_a = minute_grid(11)
    t_b = t_a[:-1] + 17 * S  # tc2 reads 17 s after tc1
    t = np.sort(np.concatenate([t_a, t_b]))
    temps = np.full((2, t.size), np.nan)
    in_a, in_b = np.isin(t, t_a), np.isin(t, t_b)
    sp = p.setpoint_c(programme_time_s(t, T0))
    temps[0, in_a] = sp[in_a]
    temps[1, in_b] = sp[in_b] + 2.0
    hot = in_b & (t >= T0 + 5 * 3600 * S) & (t < T0 + 5 * 3600 * S + 10 * 60 * S)
    temps[1, hot] += 20.0
    r = judge_firing(p, t, temps, start_ns=T0)
    assert r.coverage == pytest.approx(1.0, abs=0.002)
    assert r.thermocouples[1].mean_abs_deviation_c == pytest.approx(2.0 + 20 * 10 / 660, rel=0.02)
    (e,) = r.excursions  # one 9-minute excursion, not ten 0-second ones
    assert e.thermocouple == "tc2" and e.duration_s == 9 * 60


def test_infinite_readings_are_unusable_like_nan() -> None:
    """±inf from a broken transmitter is excluded exactly as NaN is: the dense pass finds
    unusable samples through the spread's max/min, so an inf must not slip through as a
    reading (it would win the spread, the peak and the block sums)."""
    p = ramp_hold()
    t = minute_grid(11)
    sp = p.setpoint_c(programme_time_s(t, T0))
    rng = np.random.default_rng(3)
    temps = sp + rng.normal(0, 2.0, (3, t.size))
    temps[1, 300:340] += 20.0  # an excursion, so the out-of-band path runs too
    with_inf = temps.copy()
    with_nan = temps.copy()
    for row, col, value in [(0, 10, np.inf), (1, 320, -np.inf), (2, 640, np.inf)]:
        with_inf[row, col] = value
        with_nan[row, col] = np.nan
    got = judge_firing(p, t, with_inf, start_ns=T0).to_dict()
    want = judge_firing(p, t, with_nan, start_ns=T0).to_dict()
    assert got == want
    assert got["thermocouples"][2]["valid_samples"] == t.size - 1


def test_peaks_and_cones_when_thermocouples_deviate_very_differently() -> None:
    """Peaks and the last-100 °C rate are searched in windows bounded by the setpoint and the
    row's max |deviation|; rows far off (a thermocouple stuck at room temperature, one with
    a large late excursion, one failed low long before the top) must still match the loop
    reference."""
    from tests.analytics.test_conformance_properties import close, reference

    p = Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 100, "target_c": 900},
            {"kind": "hold", "hours": 1},
            {"kind": "ramp", "rate_c_h": 50, "target_c": 1000},
            {"kind": "cool", "rate_c_h": 100, "target_c": 700},
        ]
    )
    t = minute_grid(p.duration_s / 3600 + 1)
    sp = p.setpoint_c(programme_time_s(t, T0))
    base = np.where(np.isfinite(sp), sp, 650.0)
    rng = np.random.default_rng(11)
    # 20 thermocouples that follow the setpoint set the search windows; four do not
    temps = base + rng.normal(0, 1.5, (24, t.size))
    temps[20] = 25.0 + rng.normal(0, 0.5, t.size)  # stuck at room temperature
    top = int(np.nanargmax(sp))
    temps[21, top - 200 : top - 150] += 60.0  # a big excursion before the top
    temps[22, top - 400 :] = 500.0  # failed low well before the top: peak and crossing early
    temps[22, top - 300 : top - 290] = np.nan
    temps[23, :] += 30.0  # reads 30 °C high throughout
    cfg = ConformanceSettings()
    report = judge_firing(p, t, temps, start_ns=T0, settings=cfg)
    expected, kiln = reference(p, t, temps.tolist(), cfg)
    for i, (tc, ref) in enumerate(zip(report.thermocouples, expected, strict=True)):
        assert close(tc.peak_c, ref["peak"]), i
        assert close(tc.last_100c_rate_c_h, ref["rate100"]), i
        assert close(tc.max_abs_deviation_c, ref["max"]), i
        for seg, want in zip(report.segments, ref["segments"], strict=True):
            assert close(seg.peak_c[i], want["peak"]), (i, seg.index)
            assert close(seg.achieved_rate_c_h[i], want["rate"], 1e-5), (i, seg.index)
    assert close(report.spread_max_c, kiln["spread_max"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bad_quality_is_the_same_as_missing(seed: int) -> None:
    """A reading flagged BAD, whatever its value, is judged exactly as if it were missing:
    the quality path of the dense pass (masked spread, masked peaks and cone windows) must
    agree with the NaN path on every number of the report."""
    p = Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 120, "target_c": 900},
            {"kind": "hold", "hours": 1},
            {"kind": "ramp", "rate_c_h": 60, "target_c": 1000},
            {"kind": "cool", "rate_c_h": 150, "target_c": 600},
            {"kind": "natural_cool", "target_c": 80},
        ]
    )
    t = minute_grid(p.duration_s / 3600 + 2)
    sp = p.setpoint_c(programme_time_s(t, T0))
    rng = np.random.default_rng(seed)
    temps = np.where(np.isfinite(sp), sp, 500.0) + rng.normal(0, 3.0, (6, t.size))
    temps[seed % 6, 400:430] += 40.0
    flagged = rng.random(temps.shape) < 0.05
    flagged[:, t.size // 2 : t.size // 2 + 30] = True  # a stretch all thermocouples lost
    garbage = temps.copy()
    garbage[flagged] = rng.choice([9999.0, -50.0, 1e30], int(flagged.sum()))
    quality = np.where(flagged, int(Quality.BAD), int(Quality.GOOD)).astype(np.uint8)
    missing = temps.copy()
    missing[flagged] = np.nan
    got = judge_firing(p, t, garbage, quality, start_ns=T0).to_dict()
    want = judge_firing(p, t, missing, start_ns=T0).to_dict()
    assert got == want
