"""Property tests: the vectorised judge against a slow, obvious reference written with loops.

The reference restates each definition in docs/analytics-firing.md sample by sample, so a
vectorisation mistake (an off-by-one at a gap, a weight on the wrong side) shows up as a
disagreement on some random firing.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.conformance import ConformanceSettings, judge_firing
from analytics.programme import Programme

S = 1_000_000_000
T0 = 1_767_225_600 * S


def ref_setpoint(programme: Programme, t_s: float) -> float:
    """Walk the segments one by one."""
    if t_s < 0:
        return math.nan
    temp, clock = programme.start_c, 0.0
    for seg in programme.segments:
        if seg.kind == "hold":
            if t_s <= clock + seg.hours * 3600:
                return temp
            clock += seg.hours * 3600
        elif seg.kind == "natural_cool":
            return math.nan
        else:
            hours = abs(seg.target_c - temp) / seg.rate_c_h
            if t_s <= clock + hours * 3600:
                sign = 1 if seg.kind == "ramp" else -1
                return temp + sign * seg.rate_c_h * (t_s - clock) / 3600
            clock += hours * 3600
            temp = seg.target_c
    return math.nan


def reference(programme, t_ns, temps, cfg):
    n = len(t_ns)
    t = [(int(x) - T0) / S for x in t_ns]
    out = []
    for row in temps:
        dev, ok = [], []
        for i in range(n):
            sp = ref_setpoint(programme, t[i])
            d = row[i] - sp
            ok.append(not math.isnan(d))
            dev.append(d if not math.isnan(d) else 0.0)
        weight = [0.0] * n
        covered = 0.0
        for i in range(n - 1):
            dt = t[i + 1] - t[i]
            if ok[i] and ok[i + 1] and dt <= cfg.max_gap_s:
                weight[i] += dt / 2
                weight[i + 1] += dt / 2
                covered += dt
        wsum = sum(weight)
        mean = sum(w * abs(d) for w, d in zip(weight, dev, strict=True)) / wsum if wsum else None
        inside = sum(w for w, d in zip(weight, dev, strict=True) if abs(d) <= cfg.band_c)
        share = inside / wsum if wsum else None
        mx = max((abs(d) for d, o in zip(dev, ok, strict=True) if o), default=None)
        # excursions: consecutive valid outside samples, no gap > max_gap between them
        exc, i = [], 0
        while i < n:
            if ok[i] and abs(dev[i]) > cfg.band_c:
                j = i
                while (
                    j + 1 < n
                    and ok[j + 1]
                    and abs(dev[j + 1]) > cfg.band_c
                    and t[j + 1] - t[j] <= cfg.max_gap_s
                ):
                    j += 1
                if t[j] - t[i] >= cfg.min_excursion_s:
                    exc.append((int(t_ns[i]), int(t_ns[j])))
                i = j + 1
            else:
                i += 1
        out.append(
            {
                "mean": mean,
                "share": share,
                "max": mx,
                "covered": covered,
                "excursions": exc,
            }
        )
    return out


programmes = st.lists(
    st.one_of(
        st.tuples(st.just("ramp"), st.floats(20, 200), st.floats(20, 300)),
        st.tuples(st.just("hold"), st.floats(0.2, 2.0), st.just(0.0)),
        st.tuples(st.just("cool"), st.floats(20, 200), st.floats(20, 200)),
    ),
    min_size=1,
    max_size=4,
)


def build(spec) -> Programme | None:
    segs, temp = [], 20.0
    for kind, a, b in spec:
        if kind == "hold":
            segs.append({"kind": "hold", "hours": a})
        elif kind == "ramp" and temp + b < 1400:
            temp += b
            segs.append({"kind": "ramp", "rate_c_h": a, "target_c": temp})
        elif kind == "cool" and temp - b > 0:
            temp -= b
            segs.append({"kind": "cool", "rate_c_h": a, "target_c": temp})
    return Programme.from_segments(segs) if segs else None


@settings(max_examples=60, deadline=None)
@given(
    spec=programmes,
    n=st.integers(0, 120),
    seed=st.integers(0, 2**32 - 1),
    band=st.floats(1.0, 20.0),
    max_gap=st.floats(60.0, 900.0),
)
def test_vectorised_judge_agrees_with_the_loop_reference(spec, n, seed, band, max_gap) -> None:
    programme = build(spec)
    if programme is None:
        return
    rng = np.random.default_rng(seed)
    # irregular sampling over the programme and a little beyond, with occasional long gaps
    steps = rng.exponential(programme.duration_s / max(n, 1), n)
    steps[rng.random(n) < 0.05] *= 20
    t_ns = T0 - 600 * S + np.cumsum(steps * S).astype(np.int64)
    sp = programme.setpoint_c((t_ns - T0) / S)
    temps = np.where(np.isfinite(sp), sp, 100.0) + rng.normal(0, band, (3, n))
    temps[rng.random((3, n)) < 0.1] = np.nan
    cfg = ConformanceSettings(band_c=band, max_gap_s=max_gap, min_excursion_s=300.0)
    report = judge_firing(programme, t_ns, temps, start_ns=T0, settings=cfg)
    expected = reference(programme, t_ns, temps.tolist(), cfg)
    got_exc = {}
    for e in report.excursions:
        got_exc.setdefault(e.thermocouple, []).append((e.start_ns, e.end_ns))
    for i, (tc, ref) in enumerate(zip(report.thermocouples, expected, strict=True)):
        for name, value in (
            ("mean", tc.mean_abs_deviation_c),
            ("share", tc.share_in_band),
            ("max", tc.max_abs_deviation_c),
        ):
            if ref[name] is None:
                assert math.isnan(value), name
            else:
                assert math.isclose(value, ref[name], rel_tol=1e-6, abs_tol=1e-6), name
        assert math.isclose(
            tc.coverage, min(ref["covered"] / programme.duration_s, 1.0), abs_tol=1e-9
        )
        assert got_exc.get(f"tc{i + 1}", []) == ref["excursions"]


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(5, 500),
    intercept=st.floats(0, 1000),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 300),
)
def test_segment_rate_is_the_least_squares_slope(rate, intercept, seed, n) -> None:
    """Achieved rate equals np.polyfit's slope over the segment's valid samples."""
    programme = Programme.from_segments([{"kind": "hold", "hours": 10}], start_c=500)
    rng = np.random.default_rng(seed)
    t_ns = T0 + np.sort(rng.choice(36_000, n, replace=False)).astype(np.int64) * S
    hours = (t_ns - T0) / 3.6e12
    y = intercept + rate * hours + rng.normal(0, 3, n)
    y[rng.random(n) < 0.2] = np.nan
    report = judge_firing(programme, t_ns, y[None, :], start_ns=T0)
    ok = np.isfinite(y)
    got = report.segments[0].achieved_rate_c_h[0]
    if ok.sum() < 3:
        assert math.isnan(got)
    else:
        slope = np.polyfit(hours[ok], y[ok], 1)[0]
        assert math.isclose(got, slope, rel_tol=1e-6, abs_tol=1e-6)
