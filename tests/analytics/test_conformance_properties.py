"""Property tests: the vectorised judge against a slow, obvious reference written with loops.

The reference restates each definition in docs/analytics-firing.md sample by sample, so a
vectorisation mistake (an off-by-one at a gap, a weight on the wrong side) shows up as a
disagreement on some random firing.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.conformance import ConformanceSettings, judge_firing
from analytics.firing_metrics import (
    DenseWeights,
    SampleWeights,
    block_sums_from_pass,
    segments_sums_from_pass,
)
from analytics.firing_pass import build_axis
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


def ref_slope(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope, written out."""
    n = len(ts)
    if n < 3:
        return math.nan
    mt = sum(ts) / n
    my = sum(ys) / n
    sxx = sum((t - mt) ** 2 for t in ts)
    if sxx <= 1e-12 * max(sum(t * t for t in ts), 1e-300):
        return math.nan
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / sxx


def ref_weights(t: list[float], ok: list[bool], max_gap_s: float) -> list[float]:
    weight = [0.0] * len(t)
    for i in range(len(t) - 1):
        dt = t[i + 1] - t[i]
        if ok[i] and ok[i + 1] and dt <= max_gap_s:
            weight[i] += dt / 2
            weight[i + 1] += dt / 2
    return weight


def ref_weights_skipping(
    t: list[float], ok: list[bool], judged: list[bool], max_gap_s: float
) -> list[float]:
    """Weights over a thermocouple's own valid samples: unusable samples in between are
    skipped, an interval longer than max_gap_s (or leaving the judged period) is not covered."""
    weight = [0.0] * len(t)
    idx = [i for i in range(len(t)) if ok[i]]
    for a, b in itertools.pairwise(idx):
        dt = t[b] - t[a]
        if dt <= max_gap_s and all(judged[a : b + 1]):
            weight[a] += dt / 2
            weight[b] += dt / 2
    return weight


def reference(programme, t_ns, temps, cfg):
    """Every metric of the report, one sample at a time (also timed by the benchmark)."""
    n = len(t_ns)
    t = [(int(x) - T0) / S for x in t_ns]
    spans = programme.spans
    # segment of each sample: (start, end], the first segment also owns t == 0
    seg_of = []
    for ti in t:
        j = -1
        for span in spans:
            if (span.start_s < ti or (span.index == 0 and ti >= 0)) and ti <= span.end_s:
                j = span.index
                break
        seg_of.append(j)
    out = []
    for row in temps:
        dev, ok, temp_ok = [], [], []
        for i in range(n):
            sp = ref_setpoint(programme, t[i])
            d = row[i] - sp
            ok.append(not math.isnan(d))
            temp_ok.append(not math.isnan(row[i]))
            dev.append(d if not math.isnan(d) else 0.0)
        judged = [not math.isnan(ref_setpoint(programme, ti)) for ti in t]
        weight = ref_weights_skipping(t, ok, judged, cfg.max_gap_s)
        covered = sum(weight)
        wsum = sum(weight)
        mean = sum(w * abs(d) for w, d in zip(weight, dev, strict=True)) / wsum if wsum else None
        rms = (
            math.sqrt(sum(w * d * d for w, d in zip(weight, dev, strict=True)) / wsum)
            if wsum
            else None
        )
        inside = sum(w for w, d in zip(weight, dev, strict=True) if abs(d) <= cfg.band_c)
        share = inside / wsum if wsum else None
        mx = max((abs(d) for d, o in zip(dev, ok, strict=True) if o), default=None)
        # excursions: outside samples consecutive among the valid ones (unusable samples in
        # between are skipped), no gap > max_gap between them
        exc = []
        valid_idx = [i for i in range(n) if ok[i]]
        pos = 0
        while pos < len(valid_idx):
            i = valid_idx[pos]
            if abs(dev[i]) > cfg.band_c:
                end = pos
                while (
                    end + 1 < len(valid_idx)
                    and abs(dev[valid_idx[end + 1]]) > cfg.band_c
                    and t[valid_idx[end + 1]] - t[valid_idx[end]] <= cfg.max_gap_s
                ):
                    end += 1
                j = valid_idx[end]
                if t[j] - t[i] >= cfg.min_excursion_s:
                    exc.append((int(t_ns[i]), int(t_ns[j])))
                pos = end + 1
            else:
                pos += 1
        # peak, and the heating rate over the last 100 °C before it
        peak, ipeak = None, None
        for i in range(n):
            if temp_ok[i] and (peak is None or row[i] > peak):
                peak, ipeak = row[i], i
        rate100 = None
        if peak is not None:
            thr = peak - cfg.cone_span_c
            for i in range(ipeak - 1, -1, -1):
                if temp_ok[i] and row[i] < thr:
                    j = i + 1
                    while not temp_ok[j]:  # the next valid sample (the peak at the latest)
                        j += 1
                    t_cross = t[j]
                    if t[j] - t[i] <= cfg.max_gap_s and row[j] > row[i]:
                        frac = min(max((thr - row[i]) / (row[j] - row[i]), 0.0), 1.0)
                        t_cross = t[i] + frac * (t[j] - t[i])
                    if t[ipeak] > t_cross:
                        rate100 = cfg.cone_span_c / ((t[ipeak] - t_cross) / 3600)
                    break
        # per segment: least-squares rate, soak in band (holds), peak
        segments = []
        for span in spans:
            idx = [i for i in range(n) if seg_of[i] == span.index]
            pts = [(t[i] / 3600, row[i]) for i in idx if temp_ok[i]]
            rate = ref_slope([p[0] for p in pts], [p[1] for p in pts])
            soak = None  # undefined for a thermocouple with no valid sample at all
            if span.kind == "hold" and any(ok):
                soak = sum(weight[i] for i in idx if ok[i] and abs(dev[i]) <= cfg.band_c)
            seg_peak = max((row[i] for i in idx if temp_ok[i]), default=None)
            segments.append({"rate": rate, "soak": soak, "peak": seg_peak})
        # stalls: trailing windows every stall_step_s inside ramps, rate below the limit
        stalls = 0
        for span in spans:
            if span.kind != "ramp":
                continue
            idx = [i for i in range(n) if seg_of[i] == span.index and temp_ok[i]]
            if len(idx) < 3:
                continue
            g = t[idx[0]] + cfg.stall_window_s
            slow_before = False
            first = last = 0  # the window idx[first:last], slid along (linear, not quadratic)
            while g <= t[idx[-1]]:
                while first < len(idx) and t[idx[first]] < g - cfg.stall_window_s:
                    first += 1
                while last < len(idx) and t[idx[last]] <= g:
                    last += 1
                win = idx[first:last]
                r = ref_slope([t[i] / 3600 for i in win], [row[i] for i in win])
                slow = not math.isnan(r) and r < cfg.stall_rate_c_h
                stalls += slow and not slow_before
                slow_before = slow
                g += cfg.stall_step_s
        out.append(
            {
                "mean": mean,
                "rms": rms,
                "share": share,
                "max": mx,
                "covered": covered,
                "excursions": exc,
                "peak": peak,
                "rate100": rate100,
                "segments": segments,
                "stalls": stalls,
            }
        )
    # spread across thermocouples at each sample where at least two read
    spread, both = [], []
    for i in range(n):
        vals = [row[i] for row in temps if not math.isnan(row[i])]
        both.append(len(vals) >= 2)
        spread.append(max(vals) - min(vals) if len(vals) >= 2 else 0.0)
    sw = ref_weights(t, both, cfg.max_gap_s)
    kiln = {
        "spread_max": max((s for s, b in zip(spread, both, strict=True) if b), default=None),
        "spread_mean": (
            sum(w * s for w, s in zip(sw, spread, strict=True)) / sum(sw) if sum(sw) else None
        ),
    }
    return out, kiln


def close(got: float, want: float | None, tol: float = 1e-6) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=tol, abs_tol=tol)


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
    missing=st.sampled_from([0.1, 0.6]),  # 0.6: the dense-weights path
)
def test_vectorised_judge_agrees_with_the_loop_reference(
    spec, n, seed, band, max_gap, missing
) -> None:
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
    temps[rng.random((3, n)) < missing] = np.nan
    cfg = ConformanceSettings(band_c=band, max_gap_s=max_gap, min_excursion_s=300.0)
    report = judge_firing(programme, t_ns, temps, start_ns=T0, settings=cfg)
    expected, kiln = reference(programme, t_ns, temps.tolist(), cfg)
    got_exc = {}
    for e in report.excursions:
        got_exc.setdefault(e.thermocouple, []).append((e.start_ns, e.end_ns))
    for i, (tc, ref) in enumerate(zip(report.thermocouples, expected, strict=True)):
        assert close(tc.mean_abs_deviation_c, ref["mean"])
        assert close(tc.rms_deviation_c, ref["rms"])
        assert close(tc.share_in_band, ref["share"])
        assert close(tc.max_abs_deviation_c, ref["max"])
        assert close(tc.peak_c, ref["peak"])
        assert close(tc.last_100c_rate_c_h, ref["rate100"], 1e-6)
        assert math.isclose(
            tc.coverage, min(ref["covered"] / programme.duration_s, 1.0), abs_tol=1e-9
        )
        assert got_exc.get(f"tc{i + 1}", []) == ref["excursions"]
        for seg, want in zip(report.segments, ref["segments"], strict=True):
            assert close(seg.achieved_rate_c_h[i], want["rate"], 1e-5)
            assert close(seg.peak_c[i], want["peak"])
            if seg.kind == "hold":
                assert close(seg.soak_in_band_s[i], want["soak"])
    assert close(report.spread_max_c, kiln["spread_max"])
    assert close(report.spread_mean_c, kiln["spread_mean"])


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


@settings(max_examples=50, deadline=None)
@given(
    k=st.integers(1, 4),
    n=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
    missing=st.floats(0.0, 0.9),
    max_gap=st.floats(5.0, 200.0),
)
def test_sparse_and_dense_weights_agree(k, n, seed, missing, max_gap) -> None:
    rng = np.random.default_rng(seed)
    t_s = np.cumsum(rng.uniform(1, 60, n))
    judged = np.zeros(n, dtype=bool)
    if n:
        a, b = sorted(rng.integers(0, n + 1, 2))
        judged[a:b] = True  # the setpoint exists over one stretch...
        if seed % 2:
            judged |= rng.random(n) < 0.2  # ... or, for any setpoint series, scattered
    ok = rng.random((k, n)) >= missing
    bad_rows, bad_cols = np.nonzero(~ok)
    sparse = SampleWeights(t_s, judged, ok, bad_rows, bad_cols, max_gap)
    dense = DenseWeights(t_s, judged, ok, max_gap)
    f = np.where(ok & judged[None, :], rng.normal(0, 5, (k, n)), 0.0)
    # the kernel's weighted sum: common weights for every sample, then the neighbours of the
    # unusable samples corrected from their values alone ([left of each; right of each])
    left = np.where(bad_cols >= 1, f[bad_rows, np.maximum(bad_cols - 1, 0)], 0.0)
    right = np.where(bad_cols <= n - 2, f[bad_rows, np.minimum(bad_cols + 1, n - 1)], 0.0)
    corrected = sparse.corrected(f @ sparse.wc, np.concatenate([left, right]))
    np.testing.assert_allclose(corrected, dense.weighted_sum(f), atol=1e-9)
    # covered time per region, here [0, lo), [lo, hi), [hi, n)
    lo, hi = (n // 3, 2 * n // 3) if n else (0, 0)
    region = np.repeat([0, 1, 2], [lo, hi - lo, n - hi])
    per_range = [dense.w[:, a:b].sum(axis=1) for a, b in ((0, lo), (lo, hi), (hi, n))]
    want = np.stack(per_range, axis=1).reshape(k, 3)
    np.testing.assert_allclose(dense.totals(region, 3), want, atol=1e-9)
    np.testing.assert_allclose(sparse.totals(region, 3), want, atol=1e-9)
    rows, cols = np.nonzero(ok & judged[None, :])
    np.testing.assert_allclose(sparse.at(rows, cols, ok), dense.at(rows, cols, ok), atol=1e-9)


@pytest.mark.parametrize("missing", [0.0, 0.1, 0.7, 1.0])
def test_block_and_segment_sums_over_usable_samples(missing: float) -> None:
    """The least-squares sums per block and per segment, from the dense pass's Σd and Στd
    plus the list of unusable samples (or, for mostly-empty input, of the usable ones), equal
    the sums written out over the usable samples."""
    rng = np.random.default_rng(int(missing * 10) + 1)
    p = Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 100, "target_c": 600},
            {"kind": "hold", "hours": 0.5},
            {"kind": "cool", "rate_c_h": 150, "target_c": 300},
        ]
    )
    k, n = 3, 700
    t_s = np.cumsum(rng.uniform(5, 40, n)) - 600.0  # irregular, from before the start
    sp = p.setpoint_c(t_s)
    bounds = np.searchsorted(t_s, [s.start_s for s in p.spans] + [p.spans[-1].end_s], "right")
    bounds[0] = np.searchsorted(t_s, 0.0, "left")
    axis = build_axis(t_s, sp, p.spans, bounds, 300.0, 300.0)
    y = np.where(np.isfinite(sp), sp, 20.0) + rng.normal(0, 3, (k, n))
    ok = rng.random((k, n)) >= missing
    d = np.where(ok, y - axis.sp0, 0.0)
    b, g = axis.b, axis.g
    blk = d[:, : g * b].reshape(k, g, b)
    bs, bts = blk.sum(axis=2), (blk * axis.tau).sum(axis=2)
    seg_edges = np.zeros((k, 2 * len(p.spans)))  # what the dense pass sums over edge columns
    for j in range(len(p.spans)):
        cols = axis.edge_cols[axis.edge_seg == j]
        seg_edges[:, j] = d[:, cols].sum(axis=1)
        seg_edges[:, len(p.spans) + j] = (d[:, cols] * (axis.t_h[cols] - axis.centre[j])).sum(1)
    bad_rows, bad_cols = np.nonzero(~ok)
    usable = np.nonzero(ok)
    # written out: per block, per segment (time centred per segment)
    t_h, okf = axis.t_h, ok.astype(float)
    want_blocks = np.stack(
        [(okf * w)[:, : g * b].reshape(k, g, b).sum(axis=2) for w in (1.0, t_h, t_h**2, y, t_h * y)]
    )
    seg_of = np.full(n, -1)
    for j in range(len(p.spans)):
        seg_of[axis.bounds[j] : axis.bounds[j + 1]] = j
    want_segments = np.zeros((5, k, len(p.spans)))
    for j in range(len(p.spans)):
        tc = np.where(seg_of == j, t_h - axis.centre[j], 0.0)
        m = okf * (seg_of == j)
        for i, w in enumerate((1.0, tc, tc * tc, y, tc * y)):
            want_segments[i, :, j] = (m * w).sum(axis=1)
    for use in (None, usable):
        blocks = block_sums_from_pass(axis, bs, bts, bad_rows, bad_cols, k, usable=use)
        np.testing.assert_allclose(blocks.sums, want_blocks, rtol=1e-9, atol=1e-6)
        got = segments_sums_from_pass(axis, blocks, seg_edges, bad_rows, bad_cols, k, use)
        np.testing.assert_allclose(got, want_segments, rtol=1e-9, atol=1e-6)
