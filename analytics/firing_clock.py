"""Programme time: where in its programme a firing was at each sample.

A firing's programme clock starts at ``start_ns`` (the moment the controller started the
programme, which may be later than the first sample: kilns are often loaded and logged before
they are switched on) and stops while the firing is paused (an operator hold, a power cut): the
controller freezes its travelling setpoint and carries on from the same point afterwards.

If the start time is not known, :func:`estimate_start_ns` finds the shift that lines the kiln's
mean temperature up with the programme best.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.programme import Programme

NS_PER_S = 1_000_000_000


def programme_time_s(
    time_ns: np.ndarray, start_ns: int, pauses: Sequence[tuple[int, int]] = ()
) -> np.ndarray:
    """Float seconds of programme time at each ``time_ns`` (int64 UTC ns, any shape).

    ``pauses`` are ``(pause_start_ns, pause_end_ns)`` intervals; programme time does not advance
    inside them. Raises ValueError for a pause that ends before it starts.
    Times before ``start_ns`` are negative (before the firing).
    """
    t = np.asarray(time_ns, dtype=np.int64)
    # Subtract in int64 first: float64 of epoch nanoseconds only resolves ~0.2 µs... and worse,
    # a float subtraction of two ~1.7e18 values loses the sub-second part entirely.
    elapsed = (t - np.int64(start_ns)).astype(np.float64)
    for p0, p1 in pauses:
        if p1 < p0:
            raise ValueError(f"pause ({p0}, {p1}) ends before it starts")
        lo = max(int(p0), int(start_ns))
        if p1 <= lo:
            continue
        elapsed -= np.clip((t - np.int64(lo)).astype(np.float64), 0.0, float(p1 - lo))
    return elapsed / NS_PER_S


def estimate_start_ns(
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    programme: Programme,
    *,
    earliest_ns: int | None = None,
    latest_ns: int | None = None,
    step_s: float = 60.0,
) -> int:
    """Best programme start time for a firing whose start was not recorded (or started late).

    ``temps_c`` is ``(n_thermocouples, n)`` or ``(n,)`` with NaN for missing samples. The kiln
    mean is compared with the setpoint (held at ``programme.start_c`` before the start, the cold
    kiln waiting) for every candidate start between ``earliest_ns`` (default: first sample minus
    a quarter of the programme) and ``latest_ns`` (default: last sample) every ``step_s``; the
    candidate with the least mean squared deviation wins. Raises ValueError when there is no
    finite sample to align.
    """
    t = np.asarray(time_ns, dtype=np.int64)
    y = np.asarray(temps_c, dtype=np.float64)
    if y.ndim == 2:
        with np.errstate(all="ignore"):
            counts = np.isfinite(y).sum(axis=0)
            mean = np.where(counts > 0, np.nansum(y, axis=0) / np.maximum(counts, 1), np.nan)
    else:
        mean = y
    ok = np.isfinite(mean)
    if not ok.any():
        raise ValueError("no finite temperature to align the programme with")
    t, mean = t[ok], mean[ok]
    lo = int(t[0] - programme.duration_s * NS_PER_S / 4) if earliest_ns is None else earliest_ns
    hi = int(t[-1]) if latest_ns is None else latest_ns
    step_ns = max(int(step_s * NS_PER_S), 1)
    candidates = np.arange(lo, hi + 1, step_ns, dtype=np.int64)
    # Bound the work (candidates x samples) by thinning the samples, not the candidates.
    stride = max(1, (len(candidates) * len(t)) // 20_000_000)
    ts, ms = t[::stride], mean[::stride]
    best, best_cost = int(candidates[0]), np.inf
    for chunk in np.array_split(candidates, max(1, len(candidates) // 256)):
        rel = (ts[None, :] - chunk[:, None]).astype(np.float64) / NS_PER_S
        sp = programme.setpoint_c(rel, before_start_c=programme.start_c)
        with np.errstate(all="ignore"):
            d = sp - ms[None, :]
            valid = np.isfinite(d)
            cost = np.where(valid, d * d, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        cost[valid.sum(axis=1) == 0] = np.inf
        i = int(np.argmin(cost))
        if cost[i] < best_cost:
            best, best_cost = int(chunk[i]), float(cost[i])
    return best
