"""Benchmark: OEE over 1M state changes and 10M cycle events; prints JSON.

Measured in the same run, on the same arrays:

* ``vectorised``: :func:`analytics.oee.compute_oee` over the whole span (24/7 plan), and with a
  three-shift calendar, and :func:`analytics.oee.by_day` over the first 30 days;
* ``streaming``: one ``np.sum`` over every input array (times, states, reasons, good, reject):
  the machine's floor for reading the data once;
* ``reference``: a linear, plain-Python OEE (one loop over intervals, one over cycles) on a
  1/100 subset, scaled up by 100.

Usage: ``python3 bench/oee.py [--quick]`` (``--quick``: 100k changes, 1M cycles).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.oee import (
    CycleCounts,
    MachineState,
    StateTimeline,
    by_day,
    compute_oee,
)
from analytics.shifts import ShiftCalendar

S = 1_000_000_000
T0 = 1_735_660_800 * S  # 2025-01-01 00:00 Asia/Shanghai
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
breaks = [{ start = "18:00", end = "18:30" }]
[[shift]]
name = "C"
start = "22:00"
end = "06:00"
days = ["mon", "tue", "wed", "thu", "fri"]
"""


def make_data(changes: int, cycles: int, seed: int = 7) -> tuple[StateTimeline, CycleCounts]:
    rng = np.random.default_rng(seed)
    # Press-like: mostly running; stops from seconds (minor) to hours.
    weights = np.array([0.55, 0.15, 0.05, 0.05, 0.08, 0.07, 0.04, 0.01])
    state = rng.choice(len(MachineState), changes, p=weights / weights.sum()).astype(np.int8)
    span_s = cycles * 30  # a 30 s press cycle on average
    gaps = rng.exponential(span_s / changes, changes).astype(np.int64) * S + 1
    starts = T0 + np.cumsum(gaps) - gaps[0]
    reason = np.where(state != 0, rng.integers(0, 12, changes), 0).astype(np.int32)
    timeline = StateTimeline(starts, state, reason, int(starts[-1] + gaps[-1]))
    t = np.sort(rng.integers(T0, int(starts[-1]), cycles, dtype=np.int64))
    good = (rng.random(cycles) > 0.03).astype(np.float64)
    return timeline, CycleCounts(t, good, 1.0 - good)


def reference_oee(
    starts: list[int], states: list[int], reasons: list[int], end_ns: int, times: list[int],
    good: list[float], reject: list[float], ideal_s: float, microstop_ns: int,
) -> tuple[float, dict[int, int], dict[str, int]]:  # fmt: skip
    """Plain-Python OEE (24/7 plan) with the same metric set as the core: time per class,
    minor stops by episode, downtime per reason, counts outside planned time. One loop over
    intervals, one over cycles: the baseline a first implementation would write."""
    n = len(starts)
    ends = [*starts[1:], end_ns]
    stop = {1, 3, 4, 5}
    klass = {0: "run", 1: "down", 2: "setup", 3: "delay", 4: "down", 5: "down", 6: "planned",
             7: "no_data"}  # fmt: skip
    totals = dict.fromkeys(("run", "micro", "setup", "down", "delay", "planned", "no_data"), 0)
    by_reason: dict[int, int] = {}
    i = 0
    while i < n:
        j = i
        if states[i] in stop:
            length = 0
            while j < n and states[j] in stop:
                length += ends[j] - starts[j]
                j += 1
        else:
            j = i + 1
            length = ends[i] - starts[i]
        for m in range(i, j):
            d = ends[m] - starts[m]
            name = "micro" if states[m] in stop and length < microstop_ns else klass[states[m]]
            totals[name] += d
            if name in ("setup", "down", "delay") and reasons[m]:
                by_reason[reasons[m]] = by_reason.get(reasons[m], 0) + d
        i = j
    made = ok = 0.0
    k = 0
    for t, g, r in zip(times, good, reject, strict=True):
        while k + 1 < n and starts[k + 1] <= t:
            k += 1
        if states[k] != 6:
            made += g + r
            ok += g
    run = totals["run"] + totals["micro"]
    pbt = sum(totals.values()) - totals["planned"]
    oee = (run / pbt) * (ideal_s * made * S / run) * (ok / made)
    return oee, by_reason, totals


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    changes, cycles = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    timeline, counts = make_data(changes, cycles)
    window = (int(timeline.start_ns[0]), int(timeline.end_ns))
    calendar = ShiftCalendar.parse(SHIFTS)
    kw = dict(ideal_cycle_time_s=27.0, microstop_s=300.0)

    t_vec, r = best_of(lambda: compute_oee(timeline, counts, window=window, **kw), args.repeat)
    t_cal, rc = best_of(
        lambda: compute_oee(timeline, counts, window=window, shifts=calendar, **kw), args.repeat
    )
    month = (window[0], window[0] + 30 * 86400 * S)
    t_days, days = best_of(
        lambda: by_day(timeline, counts, window=month, shifts=calendar, **kw), args.repeat
    )
    arrays = (timeline.start_ns, timeline.state, timeline.reason, counts.time_ns, counts.good,
              counts.reject)  # fmt: skip
    t_stream, _ = best_of(lambda: [np.sum(a) for a in arrays], args.repeat)

    sub = 100
    n_sub, c_sub = changes // sub, cycles // sub
    st, ss = timeline.start_ns[:n_sub].tolist(), timeline.state[:n_sub].tolist()
    sr = timeline.reason[:n_sub].tolist()
    end_sub = int(timeline.start_ns[n_sub])
    keep = counts.time_ns < end_sub
    ct = counts.time_ns[keep][:c_sub].tolist()
    cg, cr = counts.good[keep][:c_sub].tolist(), counts.reject[keep][:c_sub].tolist()
    t_ref_sub, (ref_oee, ref_reasons, _) = best_of(
        lambda: reference_oee(st, ss, sr, end_sub, ct, cg, cr, 27.0, 300 * S), args.repeat
    )
    sub_tl = StateTimeline(timeline.start_ns[:n_sub], timeline.state[:n_sub],
                           timeline.reason[:n_sub], end_sub)  # fmt: skip
    sub_counts = CycleCounts(counts.time_ns[keep][:c_sub], cg, cr)
    check = compute_oee(sub_tl, sub_counts, window=(st[0], end_sub), **kw)
    t_ref = t_ref_sub * (changes / n_sub + cycles / max(len(ct), 1)) / 2

    events = changes + cycles
    print(json.dumps({
        "benchmark": "oee",
        "quick": args.quick,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "state_changes": changes,
        "cycle_events": cycles,
        "span_days": round((window[1] - window[0]) / S / 86400, 1),
        "vectorised_s": round(t_vec, 4),
        "events_per_s": round(events / t_vec),
        "with_calendar_s": round(t_cal, 4),
        "by_day_30_days_s": round(t_days, 4),
        "by_day_count": len(days),
        "streaming_np_sum_s": round(t_stream, 4),
        "ratio_to_streaming": round(t_vec / t_stream, 1),
        "ratio_to_streaming_with_calendar": round(t_cal / t_stream, 1),
        "reference_subset": {"state_changes": n_sub, "cycle_events": len(ct),
                             "seconds": round(t_ref_sub, 4)},
        "reference_scaled_s": round(t_ref, 2),
        "speedup_vs_reference": round(t_ref / t_vec, 1),
        "reference_agrees": abs(ref_oee - check.oee) < 1e-9
        and dict(check.downtime_by_reason) == ref_reasons,
        "oee": round(r.oee, 6),
        "oee_with_calendar": round(rc.oee, 6),
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
