"""Vectorised kernels behind firing conformance: sample weights, runs, least-squares sums.

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

    ``ok`` (K, N): the thermocouple reading is usable; ``judged`` (N,): the setpoint exists.
    ``bad_rows``/``bad_cols``: every (row, column) where ``ok`` is False, row-major sorted.
    """

    def __init__(
        self,
        t_s: np.ndarray,
        judged: np.ndarray,
        ok: np.ndarray,
        bad_rows: np.ndarray,
        bad_cols: np.ndarray,
        max_gap_s: float,
    ) -> None:
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
        # what each valid neighbour of a bad sample loses: the half interval towards it
        left = bad_cols >= 1  # neighbour j - 1 loses half[j - 1]
        right = bad_cols <= n - 2  # neighbour j + 1 loses half[j]
        lr, lc = bad_rows[left], bad_cols[left] - 1
        rr, rc = bad_rows[right], bad_cols[right] + 1
        rows = np.concatenate([lr, rr])
        cols = np.concatenate([lc, rc])
        amount = np.concatenate([half[lc], half[rc - 1]]) * ok[rows, cols]
        keep = amount > 0
        self.lost_rows, self.lost_cols, self.lost = rows[keep], cols[keep], amount[keep]
        # bridges over runs of unusable samples: (row, p) and (row, q) around each run
        br, bp, bq = bad_runs(bad_rows, bad_cols)
        p, q = bp - 1, bq + 1
        inside = (p >= 0) & (q <= n - 1)
        br, p, q = br[inside], p[inside], q[inside]
        judged_before = np.concatenate([[0], np.cumsum(judged)])
        span = t_s[q] - t_s[p] if n else np.zeros(0)
        fully_judged = (judged_before[q + 1] - judged_before[p]) == (q - p + 1)
        bridge = fully_judged & (span <= max_gap_s) & ok[br, p] & ok[br, q]
        h = 0.5 * span[bridge]
        self.bridge_rows = np.concatenate([br[bridge], br[bridge]])
        self.bridge_cols = np.concatenate([p[bridge], q[bridge]])
        self.bridge = np.concatenate([h, h])
        order = np.argsort(self.bridge_rows * n + self.bridge_cols, kind="stable")
        self.bridge_rows = self.bridge_rows[order]
        self.bridge_cols = self.bridge_cols[order]
        self.bridge = self.bridge[order]
        self._bridge_keys = self.bridge_rows * n + self.bridge_cols

    def at(self, rows: np.ndarray, cols: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Weights of the (valid) samples at ``(rows, cols)``."""
        n = self.n
        left = np.where(cols >= 1, self.half[np.maximum(cols - 1, 0)], 0.0) if n > 1 else 0.0
        right = np.where(cols <= n - 2, self.half[np.minimum(cols, n - 2)], 0.0) if n > 1 else 0.0
        ok_left = ok[rows, np.maximum(cols - 1, 0)] & (cols >= 1)
        ok_right = ok[rows, np.minimum(cols + 1, n - 1)] & (cols <= n - 2)
        w = left * ok_left + right * ok_right
        if self.bridge.size and rows.size:
            keys = rows * n + cols
            # a sample can border two runs (one each side): add both bridges
            lo = np.searchsorted(self._bridge_keys, keys, side="left")
            hi = np.searchsorted(self._bridge_keys, keys, side="right")
            csum = np.concatenate([[0.0], np.cumsum(self.bridge)])
            w = w + (csum[hi] - csum[lo])
        return w

    def weighted_sum(self, f: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """``Σ_i w[k, i] f[k, i]`` over columns ``[lo, hi)``; ``f`` must be 0 where invalid."""
        hi = self.n if hi is None else hi
        base = np.einsum("kn,n->k", f[:, lo:hi], self.wc[lo:hi])  # no BLAS: see segments_sums
        m = (self.lost_cols >= lo) & (self.lost_cols < hi)
        if m.any():
            r, c = self.lost_rows[m], self.lost_cols[m]
            base -= np.bincount(r, weights=self.lost[m] * f[r, c], minlength=self.k)
        m = (self.bridge_cols >= lo) & (self.bridge_cols < hi)
        if m.any():
            r, c = self.bridge_rows[m], self.bridge_cols[m]
            base += np.bincount(r, weights=self.bridge[m] * f[r, c], minlength=self.k)
        return base

    def weighted_sum_sq(self, f: np.ndarray) -> np.ndarray:
        """``Σ_i w[k, i] f[k, i]²`` over all columns (``f`` 0 where invalid), without a
        squared copy of ``f``: one three-operand contraction."""
        base = np.einsum("kn,kn,n->k", f, f, self.wc)
        if self.lost.size:
            r, c = self.lost_rows, self.lost_cols
            base -= np.bincount(r, weights=self.lost * np.square(f[r, c]), minlength=self.k)
        if self.bridge.size:
            r, c = self.bridge_rows, self.bridge_cols
            base += np.bincount(r, weights=self.bridge * np.square(f[r, c]), minlength=self.k)
        return base

    def total(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """``Σ_i w[k, i]`` over valid samples in columns ``[lo, hi)``: covered time."""
        hi = self.n if hi is None else hi
        out = np.full(self.k, float(self.wc[lo:hi].sum()))
        m = (self.bad_cols >= lo) & (self.bad_cols < hi)
        if m.any():
            out -= np.bincount(
                self.bad_rows[m], weights=self.wc[self.bad_cols[m]], minlength=self.k
            )
        m = (self.lost_cols >= lo) & (self.lost_cols < hi)
        if m.any():
            out -= np.bincount(self.lost_rows[m], weights=self.lost[m], minlength=self.k)
        m = (self.bridge_cols >= lo) & (self.bridge_cols < hi)
        if m.any():
            out += np.bincount(self.bridge_rows[m], weights=self.bridge[m], minlength=self.k)
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

    def at(self, rows: np.ndarray, cols: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return self.w[rows, cols]

    def weighted_sum(self, f: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        hi = self.n if hi is None else hi
        return np.einsum("kn,kn->k", f[:, lo:hi], self.w[:, lo:hi])

    def weighted_sum_sq(self, f: np.ndarray) -> np.ndarray:
        return np.einsum("kn,kn,kn->k", f, f, self.w)

    def total(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        hi = self.n if hi is None else hi
        return self.w[:, lo:hi].sum(axis=1)


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


def segments_sums(
    t_h: np.ndarray,
    y0: np.ndarray,
    bad_rows: np.ndarray,
    bad_cols: np.ndarray,
    bounds: np.ndarray,
    blocks: BlockSums | None = None,
) -> np.ndarray:
    """``(5, K, S)`` sums n, Σt, Σt², Σy, Σty over the valid samples of every segment at once;
    segment ``j`` is samples ``[bounds[j], bounds[j+1])`` (``bounds`` non-decreasing).

    ``y0`` holds 0 at unusable samples, listed in ``bad_rows``/``bad_cols``: n, Σt, Σt² are
    the same for every thermocouple minus those few. Σy, Σty come from ``blocks`` (the per-block
    sums the stall detector needs anyway, :func:`block_sums_local`) for the whole blocks inside
    a segment, and from the samples themselves only at the ragged ends - so no extra pass over
    ``y0`` when ``blocks`` is given. Time is centred per segment so the sums do not cancel (the
    block sums are kept in block-local time for the same reason).

    Deliberately no BLAS (``@``) in this module: OpenBLAS threads even small products, and on a
    busy plant server those threads spin against each other; NumPy's own loops stay on one core
    and the caller parallelises over firings instead.
    """
    k = y0.shape[0]
    bounds = np.asarray(bounds, dtype=np.int64)
    n_seg = len(bounds) - 1
    lo, hi = int(bounds[0]), int(bounds[-1])
    lengths = np.diff(bounds)
    seg = np.repeat(np.arange(n_seg), lengths)  # segment of each sample in [lo, hi)
    t = t_h[lo:hi]
    first = t_h[np.minimum(bounds[:-1], len(t_h) - 1)] if len(t_h) else np.zeros(n_seg)
    last = t_h[np.clip(bounds[1:] - 1, 0, max(len(t_h) - 1, 0))] if len(t_h) else first
    centre = (first + last) / 2
    tc = t - centre[seg]
    out = np.empty((5, k, n_seg))
    out[0] = lengths.astype(np.float64)
    out[1] = np.bincount(seg, weights=tc, minlength=n_seg)
    out[2] = np.bincount(seg, weights=tc * tc, minlength=n_seg)
    m = (bad_cols >= lo) & (bad_cols < hi)
    if m.any():
        c = bad_cols[m] - lo
        key = bad_rows[m] * n_seg + seg[c]
        size = k * n_seg
        out[0] -= np.bincount(key, minlength=size).reshape(k, n_seg)
        out[1] -= np.bincount(key, weights=tc[c], minlength=size).reshape(k, n_seg)
        out[2] -= np.bincount(key, weights=tc[c] * tc[c], minlength=size).reshape(k, n_seg)
    for j in range(n_seg):  # one iteration per segment, not per sample
        a, b = int(bounds[j]), int(bounds[j + 1])
        g0, g1 = (0, 0) if blocks is None else blocks.inside(a, b)
        if g1 <= g0:  # no whole block inside: sum the samples
            part = y0[:, a:b]
            out[3, :, j] = part.sum(axis=1)
            out[4, :, j] = np.einsum("kn,n->k", part, tc[a - lo : b - lo])
            continue
        bb = blocks.b
        sy = blocks.sy[:, g0:g1]
        out[3, :, j] = sy.sum(axis=1)
        # Σ (t - c) y over a block = Σ (t - t_block) y + (t_block - c) Σ y
        out[4, :, j] = blocks.sty[:, g0:g1].sum(axis=1)
        out[4, :, j] += np.einsum("kg,g->k", sy, blocks.t0_h[g0:g1] - centre[j])
        for e0, e1 in ((a, g0 * bb), (g1 * bb, b)):  # the ragged ends
            if e1 > e0:
                part = y0[:, e0:e1]
                out[3, :, j] += part.sum(axis=1)
                out[4, :, j] += np.einsum("kn,n->k", part, tc[e0 - lo : e1 - lo])
    return out


@dataclass(frozen=True, slots=True)
class BlockSums:
    """Per block of ``b`` consecutive samples (block ``g`` = samples ``[g*b, (g+1)*b)``, a tail
    shorter than a block left out), over valid samples, in block-local time ``t - t0_h[g]``:
    ``n``, ``st``, ``stt`` (K, G) count, Σt, Σt²; ``sy``, ``sty`` (K, G) Σy, Σty.

    Built once per firing by :func:`block_sums_local` (two passes over the samples); the stall
    windows and the per-segment sums are both assembled from it. Local time keeps every sum
    small, so assembling long ranges does not cancel digits."""

    b: int
    t0_h: np.ndarray
    n: np.ndarray
    st: np.ndarray
    stt: np.ndarray
    sy: np.ndarray
    sty: np.ndarray

    def inside(self, lo: int, hi: int) -> tuple[int, int]:
        """Blocks ``[g0, g1)`` lying wholly inside samples ``[lo, hi)``."""
        return -(-lo // self.b), min(hi // self.b, self.t0_h.size)

    def global_sums(self) -> np.ndarray:
        """``(5, K, G)`` n, Σt, Σt², Σy, Σty in the caller's time (not block-local)."""
        t0 = self.t0_h[None, :]
        out = np.empty((5, *self.sy.shape))
        out[0] = self.n
        out[1] = self.st + self.n * t0
        out[2] = self.stt + 2.0 * t0 * self.st + self.n * t0 * t0
        out[3] = self.sy
        out[4] = self.sty + t0 * self.sy
        return out


def block_sums_local(
    t_h: np.ndarray, y0: np.ndarray, bad_rows: np.ndarray, bad_cols: np.ndarray, b: int
) -> BlockSums:
    """:class:`BlockSums` of ``y0`` (0 at the unusable samples ``bad_rows``/``bad_cols``).

    Σy, Σty are einsum contractions over a (K, G, b) view of ``y0`` (no copy); n, Σt, Σt²
    are common to all thermocouples minus the unusable samples.
    """
    k, n = y0.shape
    g = n // b
    m = g * b
    t0 = t_h[0:m:b]
    tr = t_h[:m].reshape(g, b) - t0[:, None]
    cnt = np.full((k, g), float(b))
    st = np.broadcast_to(tr.sum(axis=1), (k, g)).copy()
    stt = np.broadcast_to((tr * tr).sum(axis=1), (k, g)).copy()
    sel = bad_cols < m
    if sel.any():
        r, c = bad_rows[sel], bad_cols[sel]
        key = r * g + c // b
        tb = t_h[c] - t0[c // b]
        cnt -= np.bincount(key, minlength=k * g).reshape(k, g)
        st -= np.bincount(key, weights=tb, minlength=k * g).reshape(k, g)
        stt -= np.bincount(key, weights=tb * tb, minlength=k * g).reshape(k, g)
    yr = y0[:, :m].reshape(k, g, b)
    sy = np.einsum("kgb->kg", yr)
    sty = np.einsum("kgb,gb->kg", yr, tr)
    return BlockSums(b, t0, cnt, st, stt, sy, sty)


def block_sums(
    t_h: np.ndarray, y0: np.ndarray, bad_rows: np.ndarray, bad_cols: np.ndarray, b: int
) -> np.ndarray:
    """Per block of ``b`` consecutive samples: ``(5, K, G)`` sums n, Σt, Σt², Σy, Σty over
    valid samples, with ``G = N // b`` (a tail shorter than a block is left out)."""
    return block_sums_local(t_h, y0, bad_rows, bad_cols, b).global_sums()
