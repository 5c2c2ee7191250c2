"""Vectorised kernels behind firing conformance: sample weights, runs, prefix-sum slopes.

Everything here works on one firing: ``(n_thermocouples, n_samples)`` arrays sharing one time
axis. No Python loop touches samples; loops run over thermocouples' *events* (excursions, stalls)
or segments only. :mod:`analytics.conformance` composes these into a report.

Time inside a firing is float seconds from the firing start (``t_s``), or hours (``t_h``) where a
rate in °C/h falls out directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def interval_weights(
    t_s: np.ndarray, valid: np.ndarray, max_gap_s: float, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Time each sample stands for, and the covered time of each thermocouple.

    An interval between two consecutive samples is *covered* when both samples are valid and it
    is no longer than ``max_gap_s`` (longer gaps are never bridged: nothing is interpolated
    across them). A sample's weight is half of each covered interval beside it, so time-weighted
    means treat irregular sampling correctly and an isolated sample (no covered neighbour)
    weighs 0. Returns ``(weights_s (K, N), covered_s (K,))``.
    """
    k, n = valid.shape
    w = np.zeros((k, n), dtype=np.float64) if out is None else out
    if n < 2:
        w[...] = 0.0
        return w, np.zeros(k)
    dt = np.diff(t_s)
    half = np.where(dt <= max_gap_s, 0.5 * dt, 0.0)
    # w[:, :-1] = half where the interval to the right is covered, then add the left interval
    np.multiply(valid[:, :-1], half[None, :], out=w[:, :-1])
    w[:, :-1] *= valid[:, 1:]
    w[:, -1] = 0.0
    covered = 2.0 * w[:, :-1].sum(axis=1)
    w[:, 1:] += w[:, :-1].copy()
    return w, covered


@dataclass(frozen=True, slots=True)
class Runs:
    """Runs of consecutive flagged samples: row, first and last sample index (inclusive)."""

    row: np.ndarray
    first: np.ndarray
    last: np.ndarray


def runs(flag: np.ndarray, t_s: np.ndarray, max_gap_s: float) -> Runs:
    """Maximal runs of True in each row of ``flag`` (K, N); a gap longer than ``max_gap_s``
    between two samples ends a run (we do not know what happened inside it)."""
    k, n = flag.shape
    if n == 0 or not flag.any():
        e = np.zeros(0, dtype=np.int64)
        return Runs(e, e, e)
    if n > 1:
        link = flag[:, :-1] & flag[:, 1:] & (np.diff(t_s) <= max_gap_s)[None, :]
    else:
        link = np.zeros((k, 0), dtype=bool)
    first = flag.copy()
    first[:, 1:] &= ~link
    last = flag.copy()
    last[:, :-1] &= ~link
    r0, c0 = np.nonzero(first)
    _, c1 = np.nonzero(last)
    return Runs(r0, c0, c1)


class PrefixSums:
    """Prefix sums of valid samples, for least-squares slopes over any index range in O(1).

    For each thermocouple: n, Σt, Σt², Σy, Σty over valid samples, with ``t`` in hours measured
    from ``t0_h`` (kept near the data so the sums do not cancel catastrophically).
    Slopes come out in °C/h.
    """

    def __init__(
        self,
        t_h: np.ndarray,
        y0: np.ndarray,
        valid_f: np.ndarray,
        out: np.ndarray | None = None,
        tmp: np.ndarray | None = None,
    ) -> None:
        # y0: temperatures with invalid samples set to 0; valid_f: validity as 0.0/1.0.
        # out (5, K, N + 1) and tmp (K, N): optional reusable buffers.
        k, n = y0.shape
        self.t_h = t_h
        self.c = np.empty((5, k, n + 1)) if out is None else out
        tmp = np.empty((k, n)) if tmp is None else tmp
        self.c[:, :, 0] = 0.0
        np.cumsum(valid_f, axis=1, out=self.c[0, :, 1:])
        np.cumsum(np.multiply(valid_f, t_h, out=tmp), axis=1, out=self.c[1, :, 1:])
        np.cumsum(np.multiply(tmp, t_h, out=tmp), axis=1, out=self.c[2, :, 1:])
        np.cumsum(y0, axis=1, out=self.c[3, :, 1:])
        np.cumsum(np.multiply(y0, t_h, out=tmp), axis=1, out=self.c[4, :, 1:])

    def slope(
        self, lo: np.ndarray, hi: np.ndarray, min_samples: int = 3
    ) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares slope (°C/h) over samples ``[lo, hi)`` per thermocouple.

        ``lo``/``hi`` broadcast against ``(K, m)``: pass ``(m,)`` index arrays for m windows.
        Returns ``(slope (K, m), count (K, m))``; NaN where fewer than ``min_samples``.
        """
        s = self.c[:, :, hi] - self.c[:, :, lo]
        n, st, stt, sy, sty = s
        with np.errstate(all="ignore"):
            var = n * stt - st * st
            slope = (n * sty - st * sy) / var
        ok = (n >= min_samples) & (var > 1e-12 * np.maximum(n * stt, 1e-300))
        return np.where(ok, slope, np.nan), n
