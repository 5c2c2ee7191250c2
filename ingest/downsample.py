"""Downsampling a raw series into epoch-aligned windows, in NumPy (one pass, no Python loop).

Used by stores that cannot aggregate themselves exactly (the SQLite store; any store for
``first``/``last`` with the worst quality per window). Windows are ``[k*w, (k+1)*w)`` for
integer ``k`` (aligned to multiples of ``window_ns`` since the epoch, like InfluxQL's
``GROUP BY time(w)``); a window's time is its start; empty windows are left out; a window's
quality is the worst quality in it.
"""

from __future__ import annotations

import numpy as np

from ingest.contracts import AGGREGATES, Series

_NUMERIC_ONLY = {"mean", "min", "max", "sum"}


def window_starts(time_ns: np.ndarray, window_ns: int) -> np.ndarray:
    """Start of the window holding each time (floor division, so negative times work too)."""
    return (time_ns // window_ns) * window_ns


def downsample(series: Series, window_ns: int, aggregate: str) -> Series:
    """Aggregate a time-sorted raw ``series``. Raises ValueError for an unknown aggregate, a
    window that is not a positive integer, or a numeric aggregate of a text series."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate {aggregate!r}: expected one of {', '.join(AGGREGATES)}")
    if int(window_ns) != window_ns or window_ns <= 0:
        raise ValueError(f"window_ns {window_ns!r}: expected a positive integer of nanoseconds")
    window_ns = int(window_ns)
    values = series.values
    if values.dtype == object and aggregate in _NUMERIC_ONLY:
        raise ValueError(f"aggregate {aggregate!r} needs a numeric field; this one holds text")
    n = len(series)
    if n == 0:
        empty_values = np.empty(0, dtype=np.float64 if values.dtype != object else object)
        if aggregate == "count":
            empty_values = np.empty(0, dtype=np.float64)
        return Series(np.empty(0, np.int64), empty_values, np.empty(0, np.uint8))
    starts_all = window_starts(series.time_ns, window_ns)
    edges = np.flatnonzero(np.diff(starts_all)) + 1
    first = np.concatenate(([0], edges))
    last = np.concatenate((edges - 1, [n - 1]))
    counts = (last - first + 1).astype(np.float64)
    quality = np.maximum.reduceat(series.quality, first).astype(np.uint8)
    if aggregate == "first":
        out = values[first]
    elif aggregate == "last":
        out = values[last]
    elif aggregate == "count":
        out = counts
    elif aggregate == "sum":
        out = np.add.reduceat(values, first)
    elif aggregate == "mean":
        out = np.add.reduceat(values, first) / counts
    elif aggregate == "min":
        out = np.minimum.reduceat(values, first)
    else:
        out = np.maximum.reduceat(values, first)
    return Series(starts_all[first], out, quality)
