"""Vectorised kernels behind firing conformance: sample weights, runs, least-squares sums.

Everything here works on one firing: ``(n_thermocouples, n_samples)`` arrays sharing one time
axis. No Python loop touches samples; loops run over thermocouples' *events* (excursions, stalls)
or segments only. :mod:`analytics.conformance` composes these into a report.

Time inside a firing is float seconds from the firing start (``t_s``), or hours (``t_h``) where a
rate in °C/h falls out directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analytics.firing_pass import Axis


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


class SampleWeights:
    """The same weights as :func:`interval_weights`, without a (K, N) array of them.

    Written out, a valid sample's weight is ``half[i-1] * ok[i-1] + half[i] * ok[i+1]`` where
    ``half`` is half of each interval (0 across a long gap or where the setpoint does not
    exist). That is the *common* weight ``wc`` (every neighbour valid), shared by all rows,
    minus what the few invalid samples take from their neighbours. So a weighted sum is one
    matrix-vector product plus a sparse correction, and plant data - nearly all valid - costs
    one pass instead of building and reading a weight array.

    Unusable samples are skipped, not treated as gaps: when a thermocouple's valid samples on
    either side of a run of unusable ones are no more than ``max_gap_s`` apart, that interval
    is covered (a *bridge*: each side gets half of it). So thermocouples sampled at different
    instants and put on one time axis with NaN in between lose nothing; only time decides what
    a gap is.

    ``ok`` (K, N): the thermocouple reading is usable (or a function ``ok(rows, cols)``, then
    ``k`` gives the number of rows); ``judged`` (N,): the setpoint exists.
    ``bad_rows``/``bad_cols``: every (row, column) where ``ok`` is False, row-major sorted.
    """

    def __init__(
        self,
        t_s: np.ndarray,
        judged: np.ndarray,
        ok: np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray],
        bad_rows: np.ndarray,
        bad_cols: np.ndarray,
        max_gap_s: float,
        k: int | None = None,
    ) -> None:
        if callable(ok):  # ok(rows, cols) -> bool: no (K, N) mask needed
            self._ok = ok
            n = t_s.size
            k = int(k or 0)
        else:
            self._ok = lambda r, c, a=ok: a[r, c]
            k, n = ok.shape
        self.k, self.n = k, n
        if n >= 2:
            dt = np.diff(t_s)
            half = np.where((dt <= max_gap_s) & judged[:-1] & judged[1:], 0.5 * dt, 0.0)
        else:
            half = np.zeros(0)
        self.half = half
        wc = np.zeros(n)
        wc[1:] += half
        wc[:-1] += half
        self.wc = wc
        self.bad_rows, self.bad_cols = bad_rows, bad_cols
        # Neighbours, from the sorted list alone: bad sample i's left neighbour is usable
        # unless the previous entry is that very sample (same row, column - 1); likewise right.
        # ``*_src`` index the neighbour values [left of each bad sample; right of each] that
        # :meth:`corrected` takes, so a correction never searches for a sample.
        nb = bad_rows.size
        next_bad = np.zeros(nb, dtype=bool)
        if nb > 1:
            next_bad[:-1] = (bad_rows[1:] == bad_rows[:-1]) & (bad_cols[1:] == bad_cols[:-1] + 1)
        prev_bad = np.zeros(nb, dtype=bool)
        prev_bad[1:] = next_bad[:-1]
        # what each valid neighbour of a bad sample loses: the half interval towards it
        il = np.flatnonzero((bad_cols >= 1) & ~prev_bad)  # neighbour j - 1 loses half[j - 1]
        ir = np.flatnonzero((bad_cols <= n - 2) & ~next_bad)  # neighbour j + 1 loses half[j]
        rows = np.concatenate([bad_rows[il], bad_rows[ir]])
        cols = np.concatenate([bad_cols[il] - 1, bad_cols[ir] + 1])
        amount = np.concatenate([half[bad_cols[il] - 1], half[bad_cols[ir]]])
        src = np.concatenate([il, nb + ir])
        keep = amount > 0
        self.lost_rows, self.lost_cols, self.lost = rows[keep], cols[keep], amount[keep]
        # bridges over runs of unusable samples: (row, p) and (row, q) around each run; p and
        # q are usable (a run is maximal)
        i0, i1 = np.flatnonzero(~prev_bad), np.flatnonzero(~next_bad)
        br, p, q = bad_rows[i0], bad_cols[i0] - 1, bad_cols[i1] + 1
        inside = (p >= 0) & (q <= n - 1)
        br, p, q, i0, i1 = br[inside], p[inside], q[inside], i0[inside], i1[inside]
        judged_before = np.concatenate([[0], np.cumsum(judged)])
        span = t_s[q] - t_s[p] if n else np.zeros(0)
        fully_judged = (judged_before[q + 1] - judged_before[p]) == (q - p + 1)
        bridge = fully_judged & (span <= max_gap_s)
        # Interleaved (p0, q0, p1, q1, ...) the ends are already in row-major order: runs are
        # sorted and maximal, so p < q <= the next run's p in a row (equal: a sample between
        # two runs, which borders both bridges). No sort needed.
        h = 0.5 * span[bridge]
        self.bridge_rows = np.repeat(br[bridge], 2)
        self.bridge_cols = np.stack([p[bridge], q[bridge]], axis=1).reshape(-1)
        self.bridge = np.repeat(h, 2)
        bridge_src = np.stack([i0[bridge], nb + i1[bridge]], axis=1).reshape(-1)
        self._bridge_keys = self.bridge_rows * n + self.bridge_cols
        # what corrected() adds per neighbour value: a neighbour of an unusable sample loses a
        # half interval and, when the run is bridged, gains half the bridge - one net weight
        # per neighbour instead of two lists (half the gathers for every weighted sum)
        net = np.bincount(src[keep], weights=-amount[keep], minlength=2 * nb)
        net += np.bincount(bridge_src, weights=self.bridge, minlength=2 * nb)
        self._net_src = np.flatnonzero(net)
        self._net = net[self._net_src]
        self._net_rows = np.concatenate([bad_rows, bad_rows])[self._net_src]

    def at(self, rows: np.ndarray, cols: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        """Weights of the (valid) samples at ``(rows, cols)`` (``ok``: the mask, if not the
        one given at construction)."""
        n = self.n
        ok_fn = self._ok if ok is None else (lambda r, c: ok[r, c])
        left = np.where(cols >= 1, self.half[np.maximum(cols - 1, 0)], 0.0) if n > 1 else 0.0
        right = np.where(cols <= n - 2, self.half[np.minimum(cols, n - 2)], 0.0) if n > 1 else 0.0
        ok_left = ok_fn(rows, np.maximum(cols - 1, 0)) & (cols >= 1)
        ok_right = ok_fn(rows, np.minimum(cols + 1, n - 1)) & (cols <= n - 2)
        w = left * ok_left + right * ok_right
        if self.bridge.size and rows.size:
            keys = rows * n + cols
            # a sample can border two runs (one each side): add both bridges
            lo = np.searchsorted(self._bridge_keys, keys, side="left")
            hi = np.searchsorted(self._bridge_keys, keys, side="right")
            csum = np.concatenate([[0.0], np.cumsum(self.bridge)])
            w = w + (csum[hi] - csum[lo])
        return w

    def corrected(self, base: np.ndarray, f_nb: np.ndarray) -> np.ndarray:
        """``Σ_i w[k, i] f[k, i]`` from ``base`` = ``Σ_i wc[i] f[k, i]`` (the common weights,
        ``f`` 0 where invalid) and ``f_nb``, ``f`` at the neighbours of the unusable samples
        ([left of each; right of each], in list order; 0 where there is none): the only
        samples whose weight differs from ``wc``. No (K, N) array of ``f`` needed."""
        out = np.array(base, dtype=np.float64)
        if self._net_src.size:
            out += np.bincount(
                self._net_rows, weights=self._net * f_nb[self._net_src], minlength=self.k
            )
        return out

    def totals(self, region: np.ndarray, n_regions: int) -> np.ndarray:
        """(K, R) covered time (``Σ_i w[k, i]`` over valid samples) per region, ``region``
        (N,) giving each column's: all regions in one bincount per sparse list."""
        k, r = self.k, n_regions
        base = np.bincount(region, weights=self.wc, minlength=r) if self.n else np.zeros(r)
        out = np.tile(base, (k, 1))

        def per_region(rows: np.ndarray, cols: np.ndarray, w: np.ndarray) -> np.ndarray:
            key = rows * r + region[cols]
            return np.bincount(key, weights=w, minlength=k * r).reshape(k, r)

        if self.bad_rows.size:
            out -= per_region(self.bad_rows, self.bad_cols, self.wc[self.bad_cols])
        if self.lost.size:
            out -= per_region(self.lost_rows, self.lost_cols, self.lost)
        if self.bridge.size:
            out += per_region(self.bridge_rows, self.bridge_cols, self.bridge)
        return out


class DenseWeights:
    """:class:`SampleWeights` computed as a (K, N) array: the faster choice when many samples
    are unusable (e.g. thermocouples with their own timestamps on a union time axis, mostly
    NaN), where the sparse corrections would outnumber the samples. Same contract."""

    def __init__(
        self, t_s: np.ndarray, judged: np.ndarray, ok: np.ndarray, max_gap_s: float
    ) -> None:
        k, n = ok.shape
        self.k, self.n = k, n
        valid = ok & judged[None, :]
        cols = np.broadcast_to(np.arange(n), (k, n))
        prev = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)  # last valid <= i
        nxt = np.minimum.accumulate(np.where(valid, cols, n)[:, ::-1], axis=1)[:, ::-1]
        # for a valid sample i: its previous valid sample is prev[i - 1], the next nxt[i + 1]
        p = np.full((k, n), -1)
        p[:, 1:] = prev[:, :-1]
        q = np.full((k, n), n)
        q[:, :-1] = nxt[:, 1:]
        judged_at = np.flatnonzero(judged)
        # The setpoint normally exists over one stretch; then any two valid samples have only
        # judged samples between them and the check below is not needed.
        one_stretch = judged_at.size == 0 or judged_at[-1] - judged_at[0] + 1 == judged_at.size
        judged_before = np.concatenate([[0], np.cumsum(judged)])

        def half_to(other: np.ndarray, exists: np.ndarray) -> np.ndarray:
            o = np.clip(other, 0, n - 1)
            span = t_s[o]
            span -= t_s[None, :]
            np.abs(span, out=span)
            ok_span = exists & (span <= max_gap_s)
            if not one_stretch:
                lo, hi = np.minimum(o, cols), np.maximum(o, cols)
                ok_span &= (judged_before[hi + 1] - judged_before[lo]) == (hi - lo + 1)
            span *= 0.5
            span[~ok_span] = 0.0
            return span

        w = half_to(p, p >= 0) if n else np.zeros((k, n))
        if n:
            w += half_to(q, q <= n - 1)
        w[~valid] = 0.0
        self.w = w

    def at(self, rows: np.ndarray, cols: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        return self.w[rows, cols]

    def weighted_sum(self, f: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        hi = self.n if hi is None else hi
        return np.einsum("kn,kn->k", f[:, lo:hi], self.w[:, lo:hi])

    def weighted_sum_sq(self, f: np.ndarray) -> np.ndarray:
        return np.einsum("kn,kn,kn->k", f, f, self.w)

    def totals(self, region: np.ndarray, n_regions: int) -> np.ndarray:
        # one reduction per run of equal regions (a matrix product with a one-hot (N, R)
        # would be BLAS, multi-threaded at this size: see analytics/firing_pass.py)
        out = np.zeros((self.k, n_regions))
        if self.n:
            starts = np.flatnonzero(np.diff(region, prepend=-1))
            np.add.at(out.T, region[starts], np.add.reduceat(self.w, starts, axis=1).T)
        return out


def bad_runs(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of consecutive columns in a row-major sorted (row, col) list:
    ``(row, first col, last col)`` of each run."""
    if rows.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    link = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1] + 1)
    first = np.ones(rows.size, dtype=bool)
    first[1:] = ~link
    last = np.ones(rows.size, dtype=bool)
    last[:-1] = ~link
    return rows[first], cols[first], cols[last]


def sparse_runs(
    rows: np.ndarray,
    cols: np.ndarray,
    t_s: np.ndarray,
    max_gap_s: float,
    bad_keys: np.ndarray,
    n: int,
) -> Runs:
    """Runs of flagged samples given as a row-major sorted (row, col) list, where unusable
    samples in between (``bad_keys`` = sorted ``row * n + col``) do not break a run but a time
    gap longer than ``max_gap_s`` does: the flagged samples are consecutive among the
    thermocouple's *usable* samples."""
    if rows.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return Runs(e, e, e)
    r0, c0, c1 = rows[:-1], cols[:-1], cols[1:]
    same = rows[1:] == r0
    between = np.searchsorted(bad_keys, r0 * n + c1) - np.searchsorted(bad_keys, r0 * n + c0 + 1)
    link = same & (between == c1 - c0 - 1) & (t_s[c1] - t_s[c0] <= max_gap_s)
    first = np.ones(rows.size, dtype=bool)
    first[1:] = ~link
    last = np.ones(rows.size, dtype=bool)
    last[:-1] = ~link
    return Runs(rows[first], cols[first], cols[last])


@dataclass(frozen=True, slots=True)
class Runs:
    """Runs of consecutive flagged samples: row, first and last sample index (inclusive)."""

    row: np.ndarray
    first: np.ndarray
    last: np.ndarray


def runs(
    flag: np.ndarray, t_s: np.ndarray, max_gap_s: float, breaks: np.ndarray | None = None
) -> Runs:
    """Maximal runs of True in each row of ``flag`` (K, N); a gap longer than ``max_gap_s``
    between two samples ends a run (we do not know what happened inside it), and so does
    ``breaks[i]`` (N - 1,) True between samples ``i`` and ``i + 1`` (e.g. a segment change).

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
    if breaks is not None:
        gap_ok[:-1] &= ~breaks
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


@dataclass(frozen=True, slots=True)
class BlockSums:
    """Sums per block of ``b`` samples (block ``g`` = samples ``[g*b, (g+1)*b)``, a tail
    shorter than a block left out) over valid samples, time in hours from the firing start:
    ``sums`` (5, K, G) holds n, Σt, Σt², Σy, Σty.

    Each quantity is a contiguous (K, G) array, so a run of blocks is a row slice: a segment's
    whole blocks are one sum along rows, a trailing window is a few shifted slices added
    (:func:`window_sums`). Built once per group by :func:`block_sums_from_pass`; the stall
    windows and the per-segment sums both read it."""

    b: int
    t0_h: np.ndarray
    sums: np.ndarray

    def inside(self, lo: int, hi: int) -> tuple[int, int]:
        """Blocks ``[g0, g1)`` lying wholly inside samples ``[lo, hi)``."""
        return -(-lo // self.b), min(hi // self.b, self.t0_h.size)


def block_sums_from_pass(
    axis: Axis,
    bs: np.ndarray,
    bts: np.ndarray,
    bad_rows: np.ndarray,
    bad_cols: np.ndarray,
    k: int,
    out: np.ndarray | None = None,
    usable: tuple[np.ndarray, np.ndarray] | None = None,
) -> BlockSums:
    """:class:`BlockSums` from the dense pass's per-block Σd, Στd (``bs``, ``bts`` (K, G),
    ``d = y - sp0``, 0 at the unusable samples ``bad_rows``/``bad_cols``): the setpoint's
    block sums are added back; n, Σt, Σt² are common to every thermocouple minus the unusable
    samples. ``out``: a reusable (5, K, G) buffer. ``usable``: the (rows, cols) of the usable
    samples instead, when they are the fewer (mostly-empty input): sums over them directly."""
    b, g = axis.b, axis.g
    m = g * b
    x = np.empty((5, k, g)) if out is None else out
    if usable is not None:
        sel = usable[1] < m
        r, c = usable[0][sel], usable[1][sel]
        t, sp = axis.t_h[c], axis.sp0[c]
        key = r * g + c // b
        size = k * g
        for i, w in enumerate((None, t, t * t)):
            x[i] = np.bincount(key, weights=w, minlength=size).reshape(k, g)
        np.add(bs, np.bincount(key, weights=sp, minlength=size).reshape(k, g), out=x[3])
        np.multiply(bs, axis.t0_h, out=x[4])
        x[4] += bts
        x[4] += np.bincount(key, weights=t * sp, minlength=size).reshape(k, g)
        return BlockSums(b, axis.t0_h, x)
    t_blk = axis.t_h[:m].reshape(g, b)
    sp_blk = axis.sp0[:m].reshape(g, b)
    x[0] = float(b)
    x[1] = t_blk.sum(axis=1)
    x[2] = (t_blk * t_blk).sum(axis=1)
    np.add(bs, sp_blk.sum(axis=1), out=x[3])
    # Σ t y = t0 Σd + Σ τ d + Σ t sp0
    np.multiply(bs, axis.t0_h, out=x[4])
    x[4] += bts
    x[4] += (t_blk * sp_blk).sum(axis=1)
    sel = bad_cols < m
    if sel.any():
        # the unusable samples' own sums per (row, block): the list is sorted, so equal
        # (row, block) keys are adjacent - numbered in order, summed by bincount, and each
        # cell is then hit once (one ufunc.at over a flat index, the fastest of the forms measured)
        r, c = bad_rows[sel], bad_cols[sel]
        t, sp = axis.t_h[c], axis.sp0[c]
        key = r * g + c // b
        new = np.concatenate([[True], key[1:] != key[:-1]])
        cell = np.cumsum(new) - 1  # which (row, block) each unusable sample falls in
        size = int(cell[-1]) + 1
        parts = np.stack(
            [np.bincount(cell, weights=w, minlength=size) for w in (None, t, t * t, sp, t * sp)]
        )
        cells = key[new] + (k * g) * np.arange(5)[:, None]  # flat index into x, per sum
        np.subtract.at(x.reshape(-1), cells.reshape(-1), parts.reshape(-1))
    return BlockSums(b, axis.t0_h, x)


def window_sums(
    blocks: BlockSums, ends: np.ndarray, starts: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``(5, K, W)`` sums over blocks ``[starts[w], ends[w]]``. Consecutive windows of one
    length (a regularly sampled ramp) are added from shifted row slices - no gather; any
    other set falls back to running sums."""
    x = blocks.sums
    w = ends.size
    length = ends - starts
    if w and bool((np.diff(ends) == 1).all()) and bool((length == length[0]).all()):
        e0, span = int(ends[0]), int(length[0])
        if out is None:
            res = x[:, :, e0 : e0 + w].copy()
        else:
            res = out
            np.copyto(res, x[:, :, e0 : e0 + w])
        for m in range(1, span + 1):
            res += x[:, :, e0 - m : e0 - m + w]
        return res
    run = np.zeros((5, x.shape[1], x.shape[2] + 1))
    np.cumsum(x, axis=2, out=run[:, :, 1:])
    return run[:, :, ends + 1] - run[:, :, starts]


def segments_sums_from_pass(
    axis: Axis,
    blocks: BlockSums,
    edge: np.ndarray,
    bad_rows: np.ndarray,
    bad_cols: np.ndarray,
    k: int,
    usable: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``(5, K, S)`` sums n, Σt, Σt², Σy, Σty over the valid samples of every segment, time
    centred per segment (so the sums do not cancel): Σy, Σty from the whole blocks inside a
    segment (``blocks``) plus its ragged ends (``edge`` (K, 2S): the dense pass's Σd and
    Σ(t - centre)d there, the setpoint's part added back here); n, Σt, Σt² are the same for
    every thermocouple minus the unusable samples (``usable``: sums over the usable samples
    instead, as in :func:`block_sums_from_pass`)."""
    bounds = axis.bounds
    n_seg = len(bounds) - 1
    t_h, sp0, centre = axis.t_h, axis.sp0, axis.centre
    lo, hi = int(bounds[0]), int(bounds[-1])
    lengths = np.diff(bounds)
    seg = np.repeat(np.arange(n_seg), lengths)  # segment of each sample in [lo, hi)
    tc = t_h[lo:hi] - centre[seg]
    out = np.empty((5, k, n_seg))
    ec, es = axis.edge_cols, axis.edge_seg
    if usable is None:  # everything, minus the unusable samples below
        out[0] = lengths.astype(np.float64)
        out[1] = np.bincount(seg, weights=tc, minlength=n_seg)
        out[2] = np.bincount(seg, weights=tc * tc, minlength=n_seg)
        e_sy = edge[:, :n_seg] + np.bincount(es, weights=sp0[ec], minlength=n_seg)
        e_sty = edge[:, n_seg:] + np.bincount(es, weights=axis.edge_tc * sp0[ec], minlength=n_seg)
        rows, cols, sign = bad_rows, bad_cols, -1.0
    else:  # nothing, plus the usable samples below
        out[:3] = 0.0
        e_sy, e_sty = edge[:, :n_seg].copy(), edge[:, n_seg:].copy()
        (rows, cols), sign = usable, 1.0
    m = (cols >= lo) & (cols < hi)
    if m.any():
        c = cols[m] - lo
        key = rows[m] * n_seg + seg[c]
        size = k * n_seg
        out[0] += sign * np.bincount(key, minlength=size).reshape(k, n_seg)
        out[1] += sign * np.bincount(key, weights=tc[c], minlength=size).reshape(k, n_seg)
        out[2] += sign * np.bincount(key, weights=tc[c] * tc[c], minlength=size).reshape(k, n_seg)
        is_edge = np.zeros(axis.n, dtype=bool)
        is_edge[ec] = True
        e = is_edge[c + lo]
        if e.any():
            ce, ke = c[e], key[e]
            sp_e = sp0[ce + lo]
            e_sy += sign * np.bincount(ke, weights=sp_e, minlength=size).reshape(k, n_seg)
            e_sty += sign * np.bincount(ke, weights=tc[ce] * sp_e, minlength=size).reshape(k, n_seg)
    for j in range(n_seg):  # one iteration per segment, not per sample
        g0, g1 = blocks.inside(int(bounds[j]), int(bounds[j + 1]))
        out[3, :, j] = e_sy[:, j]
        out[4, :, j] = e_sty[:, j]
        if g1 > g0:
            sy = blocks.sums[3, :, g0:g1].sum(axis=1)  # time from the start
            out[3, :, j] += sy
            out[4, :, j] += blocks.sums[4, :, g0:g1].sum(axis=1) - centre[j] * sy
    return out
