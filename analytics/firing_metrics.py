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
    t_s: np.ndarray,
    valid: np.ndarray,
    max_gap_s: float,
    out: np.ndarray | None = None,
    tmp: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Time each sample stands for, and the covered time of each thermocouple.

    An interval between two consecutive samples is *covered* when both samples are valid and it
    is no longer than ``max_gap_s`` (longer gaps are never bridged: nothing is interpolated
    across them). A sample's weight is half of each covered interval beside it, so time-weighted
    means treat irregular sampling correctly and an isolated sample (no covered neighbour)
    weighs 0. Returns ``(weights_s (K, N), covered_s (K,))``; ``out`` (K, N) and ``tmp``
    (K, N - 1 or more) are optional reusable buffers.
    """
    k, n = valid.shape
    w = np.empty((k, n), dtype=np.float64) if out is None else out
    if n < 2:
        w[...] = 0.0
        return w, np.zeros(k)
    dt = np.diff(t_s)
    half = np.where(dt <= max_gap_s, 0.5 * dt, 0.0)
    # half of each covered interval: ch[i] for the interval (i, i + 1)
    ch = np.empty((k, n - 1)) if tmp is None else tmp[:, : n - 1]
    cov = np.logical_and(valid[:, 1:], valid[:, :-1])  # bool: cheap
    np.multiply(cov, half[None, :], out=ch)
    np.add(ch[:, :-1], ch[:, 1:], out=w[:, 1:-1])
    w[:, 0] = ch[:, 0]
    w[:, -1] = ch[:, -1]
    return w, w.sum(axis=1)


@dataclass(frozen=True, slots=True)
class Runs:
    """Runs of consecutive flagged samples: row, first and last sample index (inclusive)."""

    row: np.ndarray
    first: np.ndarray
    last: np.ndarray


def runs(flag: np.ndarray, t_s: np.ndarray, max_gap_s: float) -> Runs:
    """Maximal runs of True in each row of ``flag`` (K, N); a gap longer than ``max_gap_s``
    between two samples ends a run (we do not know what happened inside it).

    Works on the flagged samples only (excursions and stalls are rare), so its cost beyond one
    scan of ``flag`` is proportional to the number of flagged samples.
    """
    n = flag.shape[1]
    flat = np.flatnonzero(flag)
    if flat.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return Runs(e, e, e)
    rows, cols = np.divmod(flat, n)
    gap_ok = np.append(np.diff(t_s) <= max_gap_s, False)  # (N,): interval to the next sample
    link = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1] + 1) & gap_ok[cols[:-1]]
    first = np.ones(flat.size, dtype=bool)
    first[1:] = ~link
    last = np.ones(flat.size, dtype=bool)
    last[:-1] = ~link
    return Runs(rows[first], cols[first], cols[last])


def ls_slope(sums: np.ndarray, min_samples: int = 3) -> np.ndarray:
    """Least-squares slope from stacked sums ``(n, Σt, Σt², Σy, Σty, ...)`` on axis 0.

    NaN where fewer than ``min_samples`` samples or all at one instant.
    """
    n, st, stt, sy, sty = sums[0], sums[1], sums[2], sums[3], sums[4]
    with np.errstate(all="ignore"):
        var = n * stt - st * st
        slope = (n * sty - st * sy) / var
    ok = (n >= min_samples) & (var > 1e-12 * np.maximum(n * stt, 1e-300))
    return np.where(ok, slope, np.nan)


def segment_sums(t_h: np.ndarray, y0: np.ndarray, valid_f: np.ndarray, lo: int, hi: int):
    """``(5, K)`` sums n, Σt, Σt², Σy, Σty over samples ``[lo, hi)`` via two small matrix
    products (BLAS: one pass over the slice). Time is centred on the slice so the sums do not
    cancel."""
    t = t_h[lo:hi]
    tc = t - (t[0] + t[-1]) / 2 if t.size else t
    basis = np.stack([np.ones_like(tc), tc, tc * tc], axis=1)  # (n, 3)
    v = valid_f[:, lo:hi] @ basis  # (K, 3): n, Σt, Σt²
    yy = y0[:, lo:hi] @ basis[:, :2]  # (K, 2): Σy, Σty
    return np.concatenate([v.T, yy.T], axis=0)


def block_sums(t_h: np.ndarray, y0: np.ndarray, valid_f: np.ndarray, b: int) -> np.ndarray:
    """Per block of ``b`` consecutive samples: ``(5, K, G)`` sums n, Σt, Σt², Σy, Σty, with
    ``G = N // b`` (a tail shorter than a block is left out).

    Works on (K, G, b) views of the inputs (no copies): plain sums as a matrix product with a
    vector of ones, time-weighted sums as einsum contractions, so no (K, N) temporary is made.
    """
    k, n = y0.shape
    g = n // b
    m = g * b
    out = np.empty((5, k, g))
    vr = valid_f[:, :m].reshape(k, g, b)
    yr = y0[:, :m].reshape(k, g, b)
    tr = t_h[:m].reshape(g, b)
    ones = np.ones(b)
    np.matmul(vr, ones, out=out[0])
    np.einsum("kgb,gb->kg", vr, tr, out=out[1])
    np.einsum("kgb,gb->kg", vr, tr * tr, out=out[2])
    np.matmul(yr, ones, out=out[3])
    np.einsum("kgb,gb->kg", yr, tr, out=out[4])
    return out
