"""Batched judging: firings that share a programme time axis are judged together (one set of
NumPy calls for several firings); every report must equal judging each firing on its own."""

from __future__ import annotations

import math

import numpy as np
import pytest

import analytics.conformance as conformance
from analytics.conformance import ConformanceSettings, judge_firing, judge_firings
from analytics.firing_pass import Workspace
from analytics.programme import Programme
from core.reading import Quality

S = 1_000_000_000
T0 = 1_767_225_600 * S


def programme() -> Programme:
    return Programme.from_segments(
        [
            {"kind": "ramp", "rate_c_h": 120, "target_c": 620},
            {"kind": "hold", "hours": 1},
            {"kind": "ramp", "rate_c_h": 60, "target_c": 900},
            {"kind": "cool", "rate_c_h": 100, "target_c": 700},
            {"kind": "natural_cool", "target_c": 80},
        ]
    )


def same(a, b, path: str = "") -> None:
    """Deep equality of report dicts; floats to 1e-9 (sums may be grouped differently)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, (path, a, b)


def make(f: int, k: int, step_s: int, seed: int):
    p = programme()
    n = int((p.duration_s + 4 * 3600) // step_s)
    rng = np.random.default_rng(seed)
    starts = T0 + np.arange(f, dtype=np.int64) * 86_400 * S + rng.integers(0, 3600, f) * S
    rel = np.arange(n, dtype=np.int64) * step_s * S - 600 * S  # from 10 min before the start
    times = starts[:, None] + rel[None, :]
    sp = p.setpoint_c(rel / S)
    base = np.where(np.isfinite(sp), sp, 400.0)
    temps = base[None, None, :] + rng.normal(0, 2.0, (f, k, n))
    for i in range(f):  # different findings per firing: excursions, a stall, dead thermocouples
        temps[i, i % k, n // 4 : n // 4 + 40] += 30.0 * (1 if i % 2 else -1)
        if i % 3 == 0:
            a = n // 10
            temps[i, (i + 1) % k, a : a + 200] = temps[i, (i + 1) % k, a]  # flat: a stall
        if i % 4 == 1:
            temps[i, (i + 2) % k, :] = np.nan  # a dead thermocouple
        temps[i][rng.random((k, n)) < 0.02] = np.nan
    return p, times, temps, starts


@pytest.mark.parametrize("group_cells", [1, 3 * 4 * 2000, 1 << 30])
def test_batched_reports_equal_one_by_one(monkeypatch, group_cells) -> None:
    p, times, temps, starts = make(7, 4, 60, seed=3)
    monkeypatch.setattr(conformance, "_GROUP_CELLS", group_cells)
    settings = ConformanceSettings()
    batch = judge_firings(p, times, temps, start_ns=starts, settings=settings)
    kinds = set()
    for i, report in enumerate(batch):
        alone = judge_firing(p, times[i], temps[i], start_ns=int(starts[i]), settings=settings)
        same(report.to_dict(), alone.to_dict())
        kinds |= {report.verdict} | {e.alarm for e in report.excursions}
        kinds |= {"stall"} if report.stalls else set()
    # the data exercises the paths the grouping must split per firing
    assert {"nonconforming", "too_high", "stall"} <= kinds
    assert any(e.alarm.startswith("too_low") for r in batch for e in r.excursions)


def test_mixed_batch_groups_only_firings_on_the_same_axis() -> None:
    """Different lengths, a pause, quality flags and a second programme in one batch: each
    report still equals judging that firing alone."""
    p, times, temps, starts = make(6, 3, 120, seed=5)
    other = Programme.from_segments([{"kind": "ramp", "rate_c_h": 100, "target_c": 700}])
    progs = [p, p, other, p, p, p]
    n = times.shape[1]
    lengths = np.array([n, n, n, n - 50, n, n])
    times = times.copy()
    times[5] += np.arange(n, dtype=np.int64) * S  # drifting clock: not the same axis
    quality = np.full(temps.shape, int(Quality.GOOD), dtype=np.int8)
    quality[1, 0, 100:140] = int(Quality.BAD)
    pause = (int(starts[4]) + 3600 * S, int(starts[4]) + 5400 * S)
    pauses = [(), (), (), (), (pause,), ()]
    batch = judge_firings(
        progs, times, temps, quality, start_ns=starts, n_samples=lengths, pauses=pauses
    )
    for i, report in enumerate(batch):
        m = int(lengths[i])
        alone = judge_firing(
            progs[i],
            times[i, :m],
            temps[i, :, :m],
            quality[i, :, :m],
            start_ns=int(starts[i]),
            pauses=pauses[i],
        )
        same(report.to_dict(), alone.to_dict())


def test_batched_spread_is_per_firing() -> None:
    """Spread is across one kiln's thermocouples, never across firings judged together."""
    p, times, temps, starts = make(3, 2, 60, seed=9)
    temps = np.nan_to_num(temps, nan=500.0)
    temps[1] += 200.0  # a much hotter firing: must not widen the others' spread
    reports = judge_firings(p, times, temps, start_ns=starts)
    for i, report in enumerate(reports):
        want = np.max(np.abs(temps[i, 0] - temps[i, 1]))
        assert report.spread_max_c == pytest.approx(want)


def test_workspace_reuses_an_axis_only_for_the_same_inputs() -> None:
    """Groups of one programme share the axis built for the first; anything that changes the
    axis (setpoint, times, block size) builds a new one, and the caller's arrays stay theirs."""
    p = programme()
    t_s = np.arange(0.0, p.duration_s, 60.0)
    sp = p.setpoint_c(t_s)
    bounds = np.searchsorted(t_s, [s.start_s for s in p.spans] + [p.spans[-1].end_s], "right")
    ws = Workspace()
    first = ws.axis(t_s, sp, p.spans, bounds, 300.0, 300.0)
    assert ws.axis(t_s.copy(), sp.copy(), p.spans, bounds.copy(), 300.0, 300.0) is first
    hotter = sp + 1.0
    second = ws.axis(t_s, hotter, p.spans, bounds, 300.0, 300.0)
    assert second is not first and second.sp0.max() == pytest.approx(first.sp0.max() + 1.0)
    assert ws.axis(t_s, hotter, p.spans, bounds, 300.0, 600.0).b == 2 * second.b
    assert ws.axis(t_s + 60.0, hotter, p.spans, bounds, 300.0, 600.0).t_s[0] == 60.0
    # shared, so read-only; built from copies, so the inputs are still the caller's to change
    with pytest.raises(ValueError):
        first.wc[0] = 1.0
    sp[0] = 1.0
    t_s[0] = 1.0
