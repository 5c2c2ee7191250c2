"""Firing-curve conformance: judge one firing, or many at once, against the travelling setpoint.

Public API (the API layer and the CLI call these; see docs/analytics-firing.md)::

    judge_firing(programme, time_ns, temps_c, quality=None, *, start_ns, pauses=(),
                 thermocouples=None, settings=ConformanceSettings(), workspace=None)
                 -> FiringReport
    judge_firings(programmes, time_ns, temps_c, quality=None, *, start_ns, n_samples=None,
                  pauses=None, thermocouples=None, settings=..., workers=1)
                  -> list[FiringReport]
    judge_curve(time_ns, setpoint_c, temps_c, quality=None, *, ...) -> FiringReport
    deviation_series(programme, time_ns, temps_c, quality=None, *, start_ns, pauses=(),
                     settings=...) -> (setpoint_c (N,), deviation_c (K, N))

Inputs: ``time_ns`` int64 UTC ns, sorted ascending (shared by the thermocouples of a firing);
``temps_c`` ``(n_thermocouples, n_samples)`` float, NaN = missing; ``quality`` same shape,
``core.reading.Quality`` values (samples worse than ``settings.max_quality`` are excluded).
Raises ValueError for inputs of the wrong shape or unsorted time; bad *samples* never raise,
they are excluded and show up as lower coverage.

What is measured and how (decisions in docs/analytics-firing.md):

* deviation = temperature - setpoint, only where the setpoint exists (0 <= programme time <=
  end; not in a natural cool) and the sample is valid;
* time-weighted mean / RMS / share-in-band (:class:`~analytics.firing_metrics.SampleWeights`:
  irregular sampling is fine, unusable samples are skipped, gaps longer than ``max_gap_s`` are
  never bridged); max |deviation| over valid samples;
* excursions: runs outside ±band, consecutive among a thermocouple's valid samples, at least
  ``min_excursion_s`` long, with the controller alarm class they correspond to;
* per segment: least-squares achieved rate, soak time inside the band (holds), peak and when;
* stalls: L&L E-1 - heating slower than ``stall_rate_c_h`` over a trailing ``stall_window_s``
  while the programme ramps (defaults 6.7 °C/h = 12 °F/h over 22.5 min, hotkilns.com);
* spread across thermocouples over time, AMS2750 uniformity class from the worst |deviation|
  during holds; cone equivalent from the rate over the last 100 °C (:mod:`analytics.cones`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from analytics.cones import cone_equivalent, uniformity_class
from analytics.firing_clock import NS_PER_S, programme_time_s
from analytics.firing_metrics import (
    BlockSums,
    DenseWeights,
    Runs,
    SampleWeights,
    block_sums_from_pass,
    interval_weights,
    ls_slope,
    runs,
    segments_sums_from_pass,
    sparse_runs,
    window_sums,
)
from analytics.firing_pass import Axis, PassSums, Workspace, dense_pass
from analytics.programme import Programme, SegmentSpan
from core.reading import Quality


@dataclass(frozen=True, slots=True)
class ConformanceSettings:
    """Judging rules. Defaults name their source; every one can be changed per call."""

    band_c: float = 10.0  # ± band around the travelling setpoint
    min_excursion_s: float = 120.0  # shorter excursions are noise, not a finding
    max_gap_s: float = 300.0  # never bridge a longer gap between samples
    max_quality: int = Quality.GOOD  # exclude UNCERTAIN and BAD samples by default
    # L&L DynaTrol E-1 (hotkilns.com/support/error-codes): < 12 °F/h for 22.5 min while ramping.
    stall_rate_c_h: float = 12.0 * 5.0 / 9.0
    stall_window_s: float = 22.5 * 60.0
    # How often the trailing window is evaluated: every 5 min resolves a 22.5 min rule well
    # enough and costs a fifth of evaluating every minute (bench/firing_conformance.py).
    stall_step_s: float = 300.0
    cone_span_c: float = 100.0  # Orton: heating rate over the last 100 °C
    min_coverage: float = 0.8  # below this a firing is "insufficient data", not judged

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"ConformanceSettings.{f.name}: expected a finite number")
        if self.band_c <= 0 or self.max_gap_s <= 0 or self.stall_window_s <= 0:
            raise ValueError("ConformanceSettings: band_c, max_gap_s, stall_window_s must be > 0")
        if self.stall_step_s <= 0 or self.cone_span_c <= 0 or not 0 <= self.min_coverage <= 1:
            raise ValueError(
                "ConformanceSettings: stall_step_s, cone_span_c > 0; min_coverage in [0, 1]"
            )


@dataclass(frozen=True, slots=True)
class Excursion:
    """A stretch outside ±band. ``worst_deviation_c`` is signed (+ = hotter than setpoint)."""

    thermocouple: str
    start_ns: int
    end_ns: int
    duration_s: float
    worst_deviation_c: float
    worst_ns: int
    segment: int  # programme segment at the worst point, -1 when none
    # What a kiln controller would have alarmed (Paragon Sentry's classes, domain.md §2):
    # too_high (the one that stops a kiln), too_low_heating, too_low_hold, and
    # too_low_cooling (cooling faster than programmed: the dunting risk near 573 °C).
    alarm: str = "too_high"


@dataclass(frozen=True, slots=True)
class Stall:
    """Heating slower than the stall rate over a whole trailing window while ramping."""

    thermocouple: str
    start_ns: int
    end_ns: int
    duration_s: float
    min_rate_c_h: float
    segment: int


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """One programme segment as fired; per-thermocouple tuples follow ``FiringReport.names``."""

    index: int
    kind: str
    start_ns: int
    end_ns: int | None  # None: a natural cool (ends when the data ends)
    programmed_rate_c_h: float | None  # signed, + heating
    achieved_rate_c_h: tuple[float, ...]
    programmed_hold_s: float | None
    soak_in_band_s: tuple[float, ...] | None  # holds only
    peak_c: tuple[float, ...]
    peak_ns: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class ThermocoupleReport:
    name: str
    samples: int
    valid_samples: int
    coverage: float  # covered time / judged time, 0..1
    max_abs_deviation_c: float
    max_abs_deviation_ns: int | None
    mean_abs_deviation_c: float
    rms_deviation_c: float
    share_in_band: float
    peak_c: float
    peak_ns: int | None
    last_100c_rate_c_h: float
    cone: float
    cone_rate_clamped: bool


@dataclass(frozen=True)
class FiringReport:
    """Everything judged about one firing. NaN = undefined (no data to say); ``to_dict()``
    turns NaN into ``None`` and is JSON-able."""

    programme: str
    start_ns: int
    end_ns: int  # end of the judged period (programme end, or last sample for a natural cool)
    band_c: float
    verdict: str  # conforming | nonconforming | insufficient data | undefined
    score: float  # kiln share of judged time inside ±band, 0..1 (NaN: undefined)
    coverage: float
    max_abs_deviation_c: float
    mean_abs_deviation_c: float
    rms_deviation_c: float
    spread_max_c: float
    spread_max_ns: int | None
    spread_mean_c: float
    uniformity_c: float
    uniformity_class: int  # AMS2750 1-6; 0 worse than class 6; -1 undefined (no hold)
    cone_min: float
    cone_max: float
    thermocouples: tuple[ThermocoupleReport, ...]
    segments: tuple[SegmentReport, ...]
    excursions: tuple[Excursion, ...]
    stalls: tuple[Stall, ...]
    settings: ConformanceSettings = field(default_factory=ConformanceSettings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.thermocouples)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "__dataclass_fields__"):
        out = {f.name: _jsonable(getattr(x, f.name)) for f in fields(x)}
        if isinstance(x, FiringReport):
            out["names"] = list(x.names)
        return out
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


# -- public entry points ------------------------------------------------------------------------


def judge_firing(
    programme: Programme,
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    quality: np.ndarray | None = None,
    *,
    start_ns: int,
    pauses: Sequence[tuple[int, int]] = (),
    thermocouples: Sequence[str] | None = None,
    settings: ConformanceSettings | None = None,
    workspace: Workspace | None = None,
) -> FiringReport:
    """Judge one firing against ``programme`` started at ``start_ns`` (see module docstring).

    ``workspace``: scratch buffers to reuse between calls (:class:`Workspace`); optional.
    """
    settings = settings or ConformanceSettings()
    t, y, q, names = _check_inputs(time_ns, temps_c, quality, thermocouples)
    q3 = None if q is None else q[None]
    return _judge_group(programme, t, y[None], q3, names, start_ns, pauses, settings, workspace)[0]


def _judge_group(
    programme: Programme,
    t: np.ndarray,
    y: np.ndarray,
    q: np.ndarray | None,
    names: tuple[str, ...],
    start_ns: int,
    pauses: Sequence[tuple[int, int]],
    settings: ConformanceSettings,
    workspace: Workspace | None,
    shifts_ns: Sequence[int] = (0,),
) -> list[FiringReport]:
    """Checked inputs of ``len(shifts_ns)`` firings, ``y`` (F, K, N), that share one programme
    time axis (see :func:`_judge`) -> reports."""
    prog_t = programme_time_s(t, start_ns, pauses)
    sp = programme.setpoint_c(prog_t)
    end_ns = _judged_end_ns(programme, t, start_ns, pauses)
    spans = programme.spans
    bounds = np.searchsorted(prog_t, [s.start_s for s in spans] + [spans[-1].end_s], "right")
    # A segment runs over samples [bounds[i], bounds[i+1]); the first sample at or after start
    # belongs to the first segment (searchsorted right excludes the sample exactly at 0).
    bounds[0] = np.searchsorted(prog_t, 0.0, "left")
    seg_starts_ns = [_wall_ns(s.start_s, start_ns, pauses) for s in spans]
    cover_ns = _wall_ns(programme.duration_s, start_ns, pauses) - start_ns
    return _judge(
        t,
        start_ns,
        end_ns,
        cover_ns,
        sp,
        y,
        q,
        names,
        spans,
        bounds,
        seg_starts_ns,
        programme.name,
        settings,
        pauses,
        workspace,
        shifts_ns,
    )


def judge_firings(
    programmes: Programme | Sequence[Programme],
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    quality: np.ndarray | None = None,
    *,
    start_ns: Sequence[int] | np.ndarray,
    n_samples: Sequence[int] | np.ndarray | None = None,
    pauses: Sequence[Sequence[tuple[int, int]]] | None = None,
    thermocouples: Sequence[str] | None = None,
    settings: ConformanceSettings | None = None,
    workers: int = 1,
) -> list[FiringReport]:
    """Judge many firings held in padded batch arrays.

    ``time_ns`` ``(F, N)``, ``temps_c`` ``(F, K, N)`` (NaN padding), ``quality`` ``(F, K, N)``;
    firing ``f`` uses its first ``n_samples[f]`` samples (default all N; padding after that may
    hold anything). ``programmes`` is one programme for all or one per firing.

    Consecutive firings that share a programme time axis (same programme object and length,
    no pauses, equal ``time_ns - start_ns``) are judged together, up to ``_GROUP_CELLS``
    samples at a time: one set of NumPy calls for the group amortises NumPy's per-call cost,
    and every report equals judging that firing alone. Other firings are judged one by one,
    each fully vectorised over its thermocouples and samples (bench/firing_conformance.py).
    ``workers`` > 1 judges contiguous chunks of firings in that many threads (NumPy releases
    the GIL inside its loops), each with its own :class:`Workspace`; results keep input order.
    """
    t = np.asarray(time_ns)
    y = np.asarray(temps_c)
    if t.ndim != 2 or y.ndim != 3 or y.shape[0] != t.shape[0] or y.shape[2] != t.shape[1]:
        raise ValueError(
            f"expected time_ns (F, N) and temps_c (F, K, N), got {t.shape} and {y.shape}"
        )
    f_count = t.shape[0]
    progs = [programmes] * f_count if isinstance(programmes, Programme) else list(programmes)
    starts = np.asarray(start_ns, dtype=np.int64)
    lengths = np.full(f_count, t.shape[1]) if n_samples is None else np.asarray(n_samples)
    if len(progs) != f_count or starts.shape != (f_count,) or lengths.shape != (f_count,):
        raise ValueError("programmes, start_ns and n_samples need one entry per firing")
    if quality is not None and np.shape(quality) != y.shape:
        raise ValueError(f"quality shape {np.shape(quality)} differs from temps_c {y.shape}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")

    settings = settings or ConformanceSettings()

    def same_axis(i: int, j: int) -> bool:
        """Firing j can be judged together with firing i (see _judge): same programme, same
        length, no pauses, and the same programme time at every sample (exact, int64)."""
        n = int(lengths[i])
        return (
            progs[j] is progs[i]
            and int(lengths[j]) == n
            and (pauses is None or (not pauses[i] and not pauses[j]))
            and bool(np.array_equal(t[j, :n] - starts[j], t[i, :n] - starts[i]))
        )

    def chunk(indices: range) -> list[FiringReport]:
        ws = Workspace()
        out: list[FiringReport] = []
        i, stop = indices.start, indices.stop
        while i < stop:
            n = int(lengths[i])
            k = y.shape[1]
            limit = max(1, _GROUP_CELLS // max(k * n, 1))
            j = i + 1
            while j < stop and j - i < limit and same_axis(i, j):
                j += 1
            # checks (shapes, sorted time, names) on the first firing; the others share them
            tt, _, _, names = _check_inputs(
                t[i, :n],
                y[i, :, :n],
                None if quality is None else quality[i, :, :n],
                thermocouples,
            )
            yy = y[i:j, :, :n]  # a view: phase 1 of _judge reads it a tile at a time
            if not np.issubdtype(yy.dtype, np.floating):
                yy = yy.astype(np.float64)
            qq = None if quality is None else np.asarray(quality)[i:j, :, :n]
            out.extend(
                _judge_group(
                    progs[i],
                    tt,
                    yy,
                    qq,
                    names,
                    int(starts[i]),
                    () if pauses is None else pauses[i],
                    settings,
                    ws,
                    [int(starts[f]) - int(starts[i]) for f in range(i, j)],
                )
            )
            i = j
        return out

    if workers == 1 or f_count < 2:
        return chunk(range(f_count))
    bounds = np.linspace(0, f_count, min(workers, f_count) + 1).astype(int)
    parts = [range(a, b) for a, b in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="judge") as pool:
        results = list(pool.map(chunk, parts))
    return [r for part in results for r in part]


def judge_curve(
    time_ns: np.ndarray,
    setpoint_c: np.ndarray,
    temps_c: np.ndarray,
    quality: np.ndarray | None = None,
    *,
    name: str = "",
    thermocouples: Sequence[str] | None = None,
    settings: ConformanceSettings | None = None,
) -> FiringReport:
    """Judge temperatures against any setpoint series (NaN = not judged), without segments:
    e.g. a tunnel-kiln car's experienced curve against the designed profile it travelled
    through (:mod:`analytics.tunnel`). Stalls and uniformity need segments: none / -1 here."""
    settings = settings or ConformanceSettings()
    t, y, q, names = _check_inputs(time_ns, temps_c, quality, thermocouples)
    sp = np.asarray(setpoint_c, dtype=np.float64)
    if sp.shape != t.shape:
        raise ValueError(f"setpoint_c shape {sp.shape} differs from time_ns {t.shape}")
    judged = np.nonzero(np.isfinite(sp))[0]
    start = int(t[judged[0]]) if len(judged) else int(t[0]) if len(t) else 0
    end = int(t[judged[-1]]) if len(judged) else start
    q3 = None if q is None else q[None]
    return _judge(
        t,
        start,
        end,
        end - start,
        sp,
        y[None],
        q3,
        names,
        (),
        np.zeros(1, int),
        [],
        name,
        settings,
        (),
    )[0]


def deviation_series(
    programme: Programme,
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    quality: np.ndarray | None = None,
    *,
    start_ns: int,
    pauses: Sequence[tuple[int, int]] = (),
    settings: ConformanceSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(setpoint_c (N,), deviation_c (K, N))`` for plots; NaN where not judged or invalid."""
    settings = settings or ConformanceSettings()
    t, y, q, _ = _check_inputs(time_ns, temps_c, quality, None)
    sp = programme.setpoint_c(programme_time_s(t, start_ns, pauses))
    d = y - sp[None, :]
    if q is not None:
        d[q > settings.max_quality] = np.nan
    return sp, d


# -- the kernel ---------------------------------------------------------------------------------


def _check_inputs(
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    quality: np.ndarray | None,
    thermocouples: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[str, ...]]:
    t = np.asarray(time_ns)
    if t.ndim != 1 or not (np.issubdtype(t.dtype, np.integer) or t.size == 0):
        raise ValueError(f"time_ns: expected a 1-D array of int64 nanoseconds, got {t.dtype}")
    t = t.astype(np.int64, copy=False)
    y = np.asarray(temps_c)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] != t.shape[0]:
        raise ValueError(
            f"temps_c: expected (n_thermocouples, {t.shape[0]}) to match time_ns, got {y.shape}"
        )
    if y.shape[0] == 0:
        raise ValueError("temps_c: no thermocouple rows to judge")
    if not np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float64)
    if t.size > 1 and np.any(np.diff(t) < 0):
        raise ValueError("time_ns must be sorted ascending")
    q = None
    if quality is not None:
        q = np.asarray(quality)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape != y.shape:
            raise ValueError(f"quality shape {q.shape} differs from temps_c {y.shape}")
    if thermocouples is None:
        names = tuple(f"tc{i + 1}" for i in range(y.shape[0]))
    else:
        names = tuple(thermocouples)
        if len(names) != y.shape[0]:
            raise ValueError(f"{len(names)} thermocouple names for {y.shape[0]} rows of temps_c")
    return t, y, q, names


def _wall_ns(prog_s: float, start_ns: int, pauses: Sequence[tuple[int, int]]) -> int:
    """Wall-clock time at which programme time ``prog_s`` is reached (pauses added back)."""
    end = start_ns + round(prog_s * NS_PER_S)
    for p0, p1 in sorted(pauses):
        lo = max(p0, start_ns)
        if p1 > lo and lo <= end:
            end += p1 - lo
    return end


def _judged_end_ns(
    programme: Programme, t: np.ndarray, start_ns: int, pauses: Sequence[tuple[int, int]]
) -> int:
    if programme.spans[-1].kind == "natural_cool":
        return max(int(t[-1]) if len(t) else start_ns, start_ns)
    return _wall_ns(programme.duration_s, start_ns, pauses)


def _nan_tuple(a: np.ndarray) -> tuple[float, ...]:
    return tuple(np.asarray(a, dtype=np.float64).tolist())


def _judge(
    t_ns: np.ndarray,
    start_ns: int,
    end_ns: int,
    cover_ns: int,
    sp: np.ndarray,
    y: np.ndarray,
    q: np.ndarray | None,
    names: tuple[str, ...],
    spans: Sequence[SegmentSpan],
    bounds: np.ndarray,
    seg_starts_ns: Sequence[int],
    programme_name: str,
    s: ConformanceSettings,
    pauses: Sequence[tuple[int, int]],
    ws: Workspace | None = None,
    shifts_ns: Sequence[int] = (0,),
) -> list[FiringReport]:
    """Judge the ``len(shifts_ns)`` firings of ``y`` (F, K, N) at once: they share the
    programme time axis that ``t_ns``/``start_ns``/... describe, firing ``f`` happened
    ``shifts_ns[f]`` later (no pauses).

    Two phases (docs/analytics-firing.md, "How it is fast"): :func:`~analytics.firing_pass.
    dense_pass` reads every sample once, a tile of firings at a time while it sits in cache;
    everything below works on what it left behind, all firings of the group in one set of
    NumPy calls, so NumPy's per-call cost is paid per group, not per firing."""
    f_count, k, n = y.shape
    kk = f_count * k  # rows judged together
    t_s = (t_ns - np.int64(start_ns)).astype(np.float64) / NS_PER_S
    # Wall time during which the setpoint exists: what coverage is measured against.
    judged_s = max(cover_ns / NS_PER_S, 0.0)
    ws = ws or Workspace()
    axis = ws.axis(t_s, sp, spans, bounds, s.max_gap_s, s.stall_step_s)
    judged = axis.judged

    # phase 1: the dense pass, one tile of firings at a time
    ps = PassSums(axis, f_count, k, ws)
    tile = max(1, _TILE_CELLS // max(k * n, 1))
    for f0 in range(0, f_count, tile):
        f1 = min(f0 + tile, f_count)
        dense_pass(
            axis,
            y[f0:f1],
            None if q is None else q[f0:f1],
            s.max_quality,
            s.band_c,
            ps,
            f0,
            ws,
        )

    # phase 2: from the pass's sums and sparse lists
    bad_keys = ps.bad_keys()
    bad_rows, bad_cols = np.divmod(bad_keys, max(n, 1))
    # per (row, region): unusable judged samples, covered time, out-of-band time (regions:
    # before the programme, each segment, after; Axis.region)
    n_reg, region = axis.n_regions, axis.region
    bj = judged[bad_cols]
    bad_judged = np.bincount(
        bad_rows[bj] * n_reg + region[bad_cols[bj]], minlength=kk * n_reg
    ).reshape(kk, n_reg)
    n_valid = int(judged.sum()) - bad_judged.sum(axis=1)
    out_keys, out_vals = ps.outside()
    out_rows, out_cols = np.divmod(out_keys, max(n, 1))

    def ok_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Is the reading at (rows, cols) usable: not in the sorted list of unusable ones."""
        key = rows * n + cols
        i = np.searchsorted(bad_keys, key)
        hit = bad_keys[np.minimum(i, bad_keys.size - 1)] == key if bad_keys.size else False
        return ~hit if bad_keys.size else np.ones(key.shape, dtype=bool)

    usable = None  # (rows, cols) of the usable samples, where they are the fewer
    if bad_keys.size > 0.2 * kk * n:
        # Many unusable samples (e.g. thermocouples with their own timestamps on a union
        # axis, mostly NaN): dense weights beat the sparse corrections; recompute d densely.
        weights, s_abs, s_sq, ok = _dense_weights(axis, y, q, s, bad_keys, kk)
        if bad_keys.size > 0.5 * kk * n:
            usable = np.divmod(np.flatnonzero(ok), n)
        out_w = weights.at(out_rows, out_cols, None) if n else np.zeros(0)
    else:
        weights = SampleWeights(t_s, judged, ok_at, bad_rows, bad_cols, s.max_gap_s, k=kk)
        nb = ps.neighbours()
        s_abs = weights.corrected(ps.s_abs, np.abs(nb))
        s_sq = weights.corrected(ps.s_sq, nb * nb)
        out_w = weights.at(out_rows, out_cols, None) if n else np.zeros(0)
    covered = weights.totals(region, n_reg)
    wsum = covered_s = covered.sum(axis=1)
    imax = ps.imax
    max_abs = np.where(n_valid > 0, ps.amax, np.nan)
    with np.errstate(all="ignore"):
        mean_abs = s_abs / wsum
        wd2 = s_sq
        rms = np.sqrt(wd2 / wsum)
        out_time = np.bincount(
            out_rows * n_reg + region[out_cols], weights=out_w, minlength=kk * n_reg
        ).reshape(kk, n_reg)
        w_out = out_time.sum(axis=1)
        share = 1.0 - w_out / wsum
        coverage = np.clip(covered_s / judged_s, 0.0, 1.0) if judged_s > 0 else np.zeros(kk)
    undefined = wsum <= 0
    mean_abs[undefined] = rms[undefined] = share[undefined] = np.nan

    # segments: rates from the block and edge sums, soak from the weights
    seg_idx_at = np.full(n, -1, dtype=np.int64)
    ramp_ranges = []
    blocks = None
    n_seg = len(spans)
    if spans and n:
        blocks = block_sums_from_pass(
            axis,
            ps.bs,
            ps.bts,
            bad_rows,
            bad_cols,
            kk,
            ws.float("blocks", (5, kk, axis.g)),
            usable,
        )
        achieved_all = ls_slope(
            segments_sums_from_pass(axis, blocks, ps.edge, bad_rows, bad_cols, kk, usable)
        )
    seg_rows = []  # per segment: (achieved, soak, hold max |dev|, hold valid)
    hold_no = 0
    for j, span in enumerate(spans):
        lo, hi = int(axis.bounds[j]), max(int(axis.bounds[j + 1]), int(axis.bounds[j]))
        seg_idx_at[lo:hi] = j
        achieved = achieved_all[:, j] if n else np.full(kk, np.nan)
        soak = hold_max = hold_valid = None
        if span.kind == "hold":  # segment j is region j + 1
            soak = np.where(n_valid > 0, covered[:, j + 1] - out_time[:, j + 1], np.nan)
            hold_valid = int(judged[lo:hi].sum()) - bad_judged[:, j + 1]
            hold_max = ps.hold_max[:, hold_no] if hi > lo else np.zeros(kk)
            hold_no += hi > lo
        if span.kind == "ramp":
            ramp_ranges.append((j, lo, hi))
        seg_rows.append((achieved, soak, hold_max, hold_valid))

    # peaks (per segment and of the firing) and the cone, from windows of the input
    peaks = _peaks(axis, y, q, s, ps.amax, n_valid, spans)
    ipeak, peak = _first_max([p for _, p in peaks])
    seg_peaks = {j: p for j, p in peaks if j >= 0}
    rate100 = _cone_rates(axis, y, q, s, ipeak, peak, ps.amax, ws)
    cones = cone_equivalent(peak, rate100)

    row_shift = np.repeat(np.asarray(shifts_ns, dtype=np.int64), k)
    all_names = names * f_count
    r_out = sparse_runs(out_rows, out_cols, t_s, s.max_gap_s, bad_keys, n)
    excursions = _excursions(
        t_ns, t_s, out_keys, out_vals, n, r_out, seg_idx_at, spans, all_names, s, row_shift
    )
    paused_s = [((a - start_ns) / NS_PER_S, (b - start_ns) / NS_PER_S) for a, b in pauses]
    stalls = (
        _stalls(t_s, blocks, ramp_ranges, all_names, s, start_ns, paused_s, row_shift, ws)
        if ramp_ranges and n >= 3 and blocks is not None
        else []
    )
    spreads = _spreads(t_ns, t_s, ps.hi, ps.lo, bad_rows, bad_cols, k, s)
    return _reports(
        t_ns=t_ns,
        start_ns=start_ns,
        end_ns=end_ns,
        names=names,
        spans=spans,
        seg_starts_ns=seg_starts_ns,
        programme_name=programme_name,
        s=s,
        shifts_ns=shifts_ns,
        n=n,
        per_row={
            "n_valid": n_valid,
            "coverage": coverage,
            "max_abs": max_abs,
            "max_at": imax,
            "mean_abs": mean_abs,
            "rms": rms,
            "share": share,
            "peak": peak,
            "peak_at": ipeak,
            "rate100": rate100,
            "cone": cones.cone,
            "clamped": cones.rate_clamped,
        },
        seg_rows=seg_rows,
        seg_peaks=seg_peaks,
        n_seg=n_seg,
        excursions=excursions,
        stalls=stalls,
        spreads=spreads,
        sums=(wsum, wd2, w_out, mean_abs, coverage, max_abs),
        kk=kk,
    )


def _reports(
    *,
    t_ns: np.ndarray,
    start_ns: int,
    end_ns: int,
    names: tuple[str, ...],
    spans: Sequence[SegmentSpan],
    seg_starts_ns: Sequence[int],
    programme_name: str,
    s: ConformanceSettings,
    shifts_ns: Sequence[int],
    n: int,
    per_row: dict[str, np.ndarray],
    seg_rows: list,
    seg_peaks: dict[int, tuple[np.ndarray, np.ndarray]],
    n_seg: int,
    excursions: list,
    stalls: list,
    spreads: list,
    sums: tuple,
    kk: int,
) -> list[FiringReport]:
    """One :class:`FiringReport` per firing from the group's per-row results. Everything
    numeric is computed for all firings at once (arrays shaped (F, K)) and turned into Python
    values in bulk; the loop below only assembles objects."""
    k = len(names)
    n_firings = len(shifts_ns)
    wsum, wd2, w_out, mean_abs, coverage, max_abs = sums
    row_shift = np.repeat(np.asarray(shifts_ns, dtype=np.int64), k)
    fk = (n_firings, k)

    def when(idx: np.ndarray, present: np.ndarray) -> list:
        """Wall-clock ns of column ``idx`` for each row (its firing's shift added), None
        where not ``present``."""
        ns = (t_ns[idx] + row_shift).tolist() if n else [0] * kk
        if present.all():
            return ns
        return [v if p else None for v, p in zip(ns, present.tolist(), strict=True)]

    # per firing, all at once
    with np.errstate(all="ignore"):
        w_f = wsum.reshape(fk)
        wtot = w_f.sum(axis=1)
        has_w = wtot > 0
        kiln_mean = np.where(w_f > 0, mean_abs.reshape(fk) * w_f, 0.0).sum(axis=1) / wtot
        kiln_rms = np.sqrt(wd2.reshape(fk).sum(axis=1) / wtot)
        score = 1.0 - w_out.reshape(fk).sum(axis=1) / wtot
        kiln_cov = coverage.reshape(fk).mean(axis=1) if k else np.zeros(n_firings)
        kiln_max = np.fmax.reduce(max_abs.reshape(fk), axis=1)
        cone = per_row["cone"]
        cone = np.where(np.isfinite(cone), cone, np.nan).reshape(fk)
        cone_min, cone_max = np.fmin.reduce(cone, axis=1), np.fmax.reduce(cone, axis=1)
    kiln_mean[~has_w] = kiln_rms[~has_w] = score[~has_w] = np.nan
    uni = np.full(n_firings, -np.inf)
    for _, _, hold_max, hold_valid in seg_rows:
        if hold_valid is not None:  # a hold counts once any thermocouple read in it
            read = hold_valid.reshape(fk).sum(axis=1) > 0
            uni = np.where(read, np.maximum(uni, hold_max.reshape(fk).max(axis=1)), uni)
    uni[np.isinf(uni)] = np.nan
    uni_class = uniformity_class(uni).tolist()

    seg_lists = []
    for j in range(n_seg):
        ach, soak, _, _ = seg_rows[j]
        ip, pk = seg_peaks.get(j, (np.zeros(kk, dtype=np.int64), np.full(kk, np.nan)))
        seg_lists.append(
            (
                ach.tolist(),
                None if soak is None else soak.tolist(),
                when(ip, np.isfinite(pk)),
                pk.tolist(),
            )
        )
    nv = per_row["n_valid"]
    tc_cols = [
        list(names) * n_firings,
        [n] * kk,
        nv.tolist(),
        per_row["coverage"].tolist(),
        per_row["max_abs"].tolist(),
        when(per_row["max_at"], nv > 0),
        per_row["mean_abs"].tolist(),
        per_row["rms"].tolist(),
        per_row["share"].tolist(),
        per_row["peak"].tolist(),
        when(per_row["peak_at"], np.isfinite(per_row["peak"])),
        per_row["rate100"].tolist(),
        per_row["cone"].tolist(),
        per_row["clamped"].tolist(),
    ]
    tc_all = [ThermocoupleReport(*row) for row in zip(*tc_cols, strict=True)]
    exc_by = [[] for _ in range(n_firings)]
    for e, row in excursions:
        exc_by[row // k].append(e)
    stall_by = [[] for _ in range(n_firings)]
    for st_, row in stalls:
        stall_by[row // k].append(st_)
    per_f = zip(
        wtot.tolist(),
        kiln_cov.tolist(),
        score.tolist(),
        kiln_max.tolist(),
        kiln_mean.tolist(),
        kiln_rms.tolist(),
        uni.tolist(),
        uni_class,
        cone_min.tolist(),
        cone_max.tolist(),
        strict=True,
    )
    ends = [
        None if span.kind == "natural_cool" else _span_end_ns(span, seg_starts_ns, j, spans, end_ns)
        for j, span in enumerate(spans)
    ]
    reports = []
    for f, (shift, agg) in enumerate(zip(shifts_ns, per_f, strict=True)):
        wt, cov, sc, mx, mean, rms, un, un_cls, c_min, c_max = agg
        r0, r1 = f * k, (f + 1) * k
        spread_max, spread_max_ns, spread_mean = spreads[f]
        segments = tuple(
            SegmentReport(
                index=j,
                kind=span.kind,
                start_ns=int(seg_starts_ns[j]) + shift,
                end_ns=None if ends[j] is None else ends[j] + shift,
                programmed_rate_c_h=span.rate_c_h,
                achieved_rate_c_h=tuple(seg_lists[j][0][r0:r1]),
                programmed_hold_s=span.hold_s,
                soak_in_band_s=None if seg_lists[j][1] is None else tuple(seg_lists[j][1][r0:r1]),
                peak_c=tuple(seg_lists[j][3][r0:r1]),
                peak_ns=tuple(seg_lists[j][2][r0:r1]),
            )
            for j, span in enumerate(spans)
        )
        if wt <= 0:
            verdict = "undefined"
        elif cov < s.min_coverage:
            verdict = "insufficient data"
        elif exc_by[f] or stall_by[f]:
            verdict = "nonconforming"
        else:
            verdict = "conforming"
        reports.append(
            FiringReport(
                programme=programme_name,
                start_ns=int(start_ns) + shift,
                end_ns=int(end_ns) + shift,
                band_c=s.band_c,
                verdict=verdict,
                score=sc,
                coverage=cov,
                max_abs_deviation_c=mx,
                mean_abs_deviation_c=mean,
                rms_deviation_c=rms,
                spread_max_c=spread_max,
                spread_max_ns=None if spread_max_ns is None else spread_max_ns + shift,
                spread_mean_c=spread_mean,
                uniformity_c=un,
                uniformity_class=un_cls,
                cone_min=c_min,
                cone_max=c_max,
                thermocouples=tuple(tc_all[r0:r1]),
                segments=segments,
                excursions=tuple(exc_by[f]),
                stalls=tuple(stall_by[f]),
                settings=s,
            )
        )
    return reports


def _dense_weights(
    axis: Axis,
    y: np.ndarray,
    q: np.ndarray | None,
    s: ConformanceSettings,
    bad_keys: np.ndarray,
    kk: int,
) -> tuple[DenseWeights, np.ndarray, np.ndarray, np.ndarray]:
    """:class:`DenseWeights`, the weighted Σ|d|, Σd² and the (rows, N) usable mask for a
    group with many unusable samples: the deviation is recomputed as a (rows, N) array (the
    data is mostly holes)."""
    n = axis.n
    ok = np.ones(kk * n, dtype=bool)
    ok[bad_keys] = False
    ok = ok.reshape(kk, n)
    d = y.reshape(kk, n) - axis.sp0
    d[~ok] = 0.0
    d[:, ~axis.judged] = 0.0
    weights = DenseWeights(axis.t_s, axis.judged, ok, s.max_gap_s)
    return weights, weights.weighted_sum(np.abs(d)), weights.weighted_sum_sq(d), ok


def _p90(x: np.ndarray) -> float:
    """``np.quantile(x, 0.9)`` (linear interpolation) by partition: a tenth of the cost on the
    few hundred values it sees here, where quantile's generality is most of the time."""
    pos = 0.9 * (x.size - 1)
    lo = int(pos)
    hi = min(lo + 1, x.size - 1)
    part = np.partition(x, (lo, hi))
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


def _regions(axis: Axis, spans: Sequence[SegmentSpan]) -> list[tuple[int, int, int]]:
    """``(segment or -1, lo, hi)`` tiling [0, N): before the first segment, each segment,
    after the last."""
    if not spans:
        return [(-1, 0, axis.n)]
    labels = [-1, *range(len(spans)), -1]  # Axis.edges: region j + 1 is segment j
    e = axis.edges.tolist()
    return [(j, e[i], e[i + 1]) for i, j in enumerate(labels)]


def _window_max(
    y: np.ndarray, q: np.ndarray | None, s: ConformanceSettings, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index (absolute) and value of each row's largest usable reading in columns [lo, hi)
    of ``y`` (F, K, N), read from the input; value NaN where the row has none there."""
    win = y[..., lo:hi]
    rows = win.shape[0] * win.shape[1]
    if hi <= lo:
        return np.zeros(rows, dtype=np.int64), np.full(rows, np.nan)
    if q is None:
        vmax = np.fmax.reduce(win, axis=-1)  # skips NaN
        if np.isinf(vmax).any():  # an infinite reading is unusable too (never on plant data)
            vmax = np.maximum.reduce(win, axis=-1, where=np.isfinite(win), initial=-np.inf)
    else:
        ok = np.isfinite(win) & (q[..., lo:hi] <= s.max_quality)
        vmax = np.maximum.reduce(win, axis=-1, where=ok, initial=-np.inf)
    vmax = vmax.reshape(rows)
    with np.errstate(invalid="ignore"):
        at = (win.reshape(rows, hi - lo) == vmax[:, None]).argmax(axis=1)
    vmax[~np.isfinite(vmax)] = np.nan
    return lo + at, vmax


def _rows_max(
    y: np.ndarray, q: np.ndarray | None, s: ConformanceSettings, rows: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_window_max` for some rows only (a copy of just those rows)."""
    k = y.shape[1]
    sub = y[rows // k, rows % k, lo:hi][:, None, :]
    qs = None if q is None else q[rows // k, rows % k, lo:hi][:, None, :]
    return _window_max(sub, qs, s, 0, hi - lo) if hi > lo else _window_max(sub, qs, s, 0, 0)


def _peaks(
    axis: Axis,
    y: np.ndarray,
    q: np.ndarray | None,
    s: ConformanceSettings,
    amax: np.ndarray,
    n_valid: np.ndarray,
    spans: Sequence[SegmentSpan],
) -> list[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """Per region of :func:`_regions`: each row's peak (index, value).

    Inside a judged segment a reading is within ``M`` (the row's max |deviation|) of the
    setpoint, so the peak lies where the setpoint is within ``2M`` of its maximum: only that
    window is read (the end of a ramp, all of a hold). Rows with a larger ``M`` than the
    window allows are read over the whole segment when their peak fails the bound."""
    rows = amax.size
    usual = amax[n_valid > 0]
    m_win = _p90(usual) if usual.size else 0.0
    out = []
    for j, lo, hi in _regions(axis, spans):
        if hi <= lo:
            out.append((j, (np.zeros(rows, dtype=np.int64), np.full(rows, np.nan))))
            continue
        seg_sp = axis.sp[lo:hi]
        if j < 0 or spans[j].kind == "natural_cool" or not np.isfinite(seg_sp).all():
            out.append((j, _window_max(y, q, s, lo, hi)))
            continue
        top = float(seg_sp.max())
        cand = np.flatnonzero(seg_sp >= top - 2.0 * m_win)
        c0, c1 = lo + int(cand[0]), lo + int(cand[-1]) + 1
        ip, val = _window_max(y, q, s, c0, c1)
        # every reading outside the window is below top - 2 m_win + M (M = the row's max
        # |deviation|): a window peak at least that high is the segment's, ties included
        with np.errstate(invalid="ignore"):
            redo = np.flatnonzero(~(val >= top - 2.0 * m_win + amax))
        redo = redo[n_valid[redo] > 0] if (c0, c1) != (lo, hi) else redo[:0]
        if redo.size:
            ip[redo], val[redo] = _rows_max(y, q, s, redo, lo, hi)
            ip[redo] += lo
        out.append((j, (ip, val)))
    return out


def _cone_rates(
    axis: Axis,
    y: np.ndarray,
    q: np.ndarray | None,
    s: ConformanceSettings,
    ipeak: np.ndarray,
    peak: np.ndarray,
    amax: np.ndarray,
    ws: Workspace,
) -> np.ndarray:
    """Heating rate over the last ``cone_span_c`` before each row's peak
    (:func:`_last_span_rate`), reading only a window before the peaks: where the setpoint is
    more than the rows' max |deviation| below the threshold every judged reading is below it,
    so the crossing lies after the last such sample. Rows it does not settle are read whole."""
    rows, n = peak.size, axis.n
    f, k = y.shape[0], y.shape[1]
    rate = np.full(rows, np.nan)
    has = np.flatnonzero(np.isfinite(peak))
    if has.size == 0 or n < 2:
        return rate
    # the window is set by the typical rows (a stuck thermocouple must not widen it to the
    # whole firing); the others are settled by the fallback below when it misses them
    m = _p90(amax[has])
    typical = has[amax[has] <= m]
    first_peak = int(ipeak[typical].min())
    thr = float(np.min(peak[typical])) - s.cone_span_c
    below = np.flatnonzero(axis.judged[:first_peak] & (axis.sp0[:first_peak] + m < thr))
    c_lo = max(int(below[-1]) - 64, 0) if below.size else 0
    c_hi = int(ipeak[has].max()) + 1
    inside = has[ipeak[has] >= c_lo]
    win = y[..., c_lo:c_hi].reshape(rows, c_hi - c_lo)
    ok = np.isfinite(win)
    if q is not None:
        ok &= q[..., c_lo:c_hi].reshape(rows, c_hi - c_lo) <= s.max_quality
    rate[inside] = _last_span_rate(
        axis.t_s[c_lo:c_hi], win[inside], ok[inside], ipeak[inside] - c_lo, peak[inside], s
    )
    if c_lo > 0:
        redo = has[~np.isfinite(rate[has])]  # no crossing in the window: read the whole row
        if redo.size:
            full = y[redo // k, redo % k, :]
            ok_full = np.isfinite(full)
            if q is not None:
                ok_full &= q[redo // k, redo % k, :] <= s.max_quality
            rate[redo] = _last_span_rate(axis.t_s, full, ok_full, ipeak[redo], peak[redo], s)
    del f
    return rate


def _spreads(
    t_ns: np.ndarray,
    t_s: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    bad_rows: np.ndarray,
    bad_cols: np.ndarray,
    k: int,
    s: ConformanceSettings,
) -> list[tuple[float, int | None, float]]:
    """Spread across each firing's thermocouples where at least two read: ``(max, when,
    time-weighted mean)`` per firing, from the largest and smallest reading per sample that
    the dense pass kept (``hi``/``lo`` (F, N)). The count of readers comes from the sparse
    list of unusable samples: no pass over a (K, N) mask."""
    g, n = hi.shape
    counts = np.bincount((bad_rows // k) * n + bad_cols, minlength=g * n).reshape(g, n)
    with np.errstate(all="ignore"):
        both = (k - counts) >= 2
        spread = np.where(both, hi - lo, np.nan)
    out: list[tuple[float, int | None, float]] = [(math.nan, None, math.nan)] * g
    if n == 0:
        return out
    any_both = both.any(axis=1)
    sw, sw_sum = interval_weights(t_s, both, s.max_gap_s)
    filled = np.where(both, spread, -np.inf)
    at = filled.argmax(axis=1)
    with np.errstate(all="ignore"):
        mean = np.nansum(spread * sw, axis=1) / sw_sum
    for f in np.flatnonzero(any_both).tolist():
        i = int(at[f])
        out[f] = (
            float(spread[f, i]),
            int(t_ns[i]),
            float(mean[f]) if sw_sum[f] > 0 else math.nan,
        )
    return out


def _excursions(
    t_ns: np.ndarray,
    t_s: np.ndarray,
    out_keys: np.ndarray,
    out_vals: np.ndarray,
    n: int,
    r: Runs,
    seg_idx_at: np.ndarray,
    spans: Sequence[SegmentSpan],
    names: tuple[str, ...],
    s: ConformanceSettings,
    row_shift: np.ndarray,
) -> list[tuple[Excursion, int]]:
    """Excursions (with their row) from runs outside the band; ``out_keys``/``out_vals`` are
    the samples outside the band (row * n + col, sorted) and their deviation; row ``r``
    happened ``row_shift[r]`` ns after ``t_ns`` says."""
    if r.row.size == 0:
        return []
    # Every field as an array first: a thermocouple wavering across the band edge can make
    # thousands of excursions, and a Python loop over NumPy scalars cost 4 us each (measured:
    # the judge 6x slower on such data). The runs partition the sorted list of samples outside
    # the band, so each run is one slice of it and reduceat finds every run's worst at once.
    p0 = np.searchsorted(out_keys, r.row * n + r.first)
    size = np.diff(np.append(p0, out_keys.size))
    mag = np.abs(out_vals)
    worst_mag = np.maximum.reduceat(mag, p0)
    # the first sample of each run at its worst (as argmax would pick)
    at_worst = np.flatnonzero(mag == np.repeat(worst_mag, size))
    at = at_worst[np.searchsorted(at_worst, p0)]
    dur = t_s[r.last] - t_s[r.first]
    keep = np.flatnonzero(dur >= s.min_excursion_s)
    rows, at = r.row[keep], at[keep]
    worst_col = out_keys[at] - rows * n
    shift = row_shift[rows]
    seg = seg_idx_at[worst_col]
    low = [_LOW_ALARMS.get(span.kind, "too_low") for span in spans] + ["too_low"]  # [-1]: none
    return [
        (
            Excursion(
                thermocouple=names[row],
                start_ns=t0,
                end_ns=t1,
                duration_s=d,
                worst_deviation_c=v,
                worst_ns=tw,
                segment=sg,
                alarm="too_high" if v > 0 else low[sg],
            ),
            row,
        )
        for row, t0, t1, d, v, tw, sg in zip(
            rows.tolist(),
            (t_ns[r.first[keep]] + shift).tolist(),
            (t_ns[r.last[keep]] + shift).tolist(),
            dur[keep].tolist(),
            out_vals[at].tolist(),
            (t_ns[worst_col] + shift).tolist(),
            seg.tolist(),
            strict=True,
        )
    ]


def _span_end_ns(
    span: SegmentSpan, starts_ns: Sequence[int], j: int, spans: Sequence[SegmentSpan], end_ns: int
) -> int:
    return int(starts_ns[j + 1]) if j + 1 < len(spans) else int(end_ns)


def _first_max(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Combine per-range ``(index, value)`` maxima of consecutive ranges into the maximum over
    all of them; the first range wins a tie (as ``argmax`` over the whole row would); NaN =
    no valid sample in that range."""
    idx = np.stack([p[0] for p in parts], axis=1)
    val = np.stack([p[1] for p in parts], axis=1)
    filled = np.where(np.isnan(val), -np.inf, val)
    best = filled.argmax(axis=1)
    rows = np.arange(idx.shape[0])
    return idx[rows, best], val[rows, best]


# Firings sharing a programme time axis are judged together up to this many samples: phase 2
# of _judge then pays NumPy's per-call cost once for the group, and its arrays (block sums,
# spreads: about a tenth of the samples) stay small. Phase 1 reads the group a tile of
# _TILE_CELLS at a time: large enough to amortise a NumPy call, small enough to stay in cache
# (bench/firing_conformance.py; docs/analytics-firing.md, "How it is fast").
_GROUP_CELLS = 1 << 21
_TILE_CELLS = 1 << 18


def _last_span_rate(
    t_s: np.ndarray,
    y: np.ndarray,
    ok: np.ndarray,
    ipeak: np.ndarray,
    peak: np.ndarray,
    s: ConformanceSettings,
) -> np.ndarray:
    """Heating rate (°C/h) over the last ``cone_span_c`` before each row's peak, over the
    columns given (``y``, ``ok`` (R, W), ``ipeak`` into them): the time from the last valid
    sample below ``peak - span`` before the peak (crossing found by linear interpolation to
    the next valid sample when no gap lies between; else that next sample's time) to the
    peak. NaN where no such sample lies in the columns given."""
    k, w = y.shape
    rate = np.full(k, np.nan)
    if w < 2 or k == 0:
        return rate
    thr = peak - s.cone_span_c
    col = np.arange(w)[None, :]
    with np.errstate(invalid="ignore"):
        below = np.less(y, thr[:, None])
    below &= ok
    below &= col < ipeak[:, None]
    has = below.any(axis=1)
    if not has.any():
        return rate
    rows = np.flatnonzero(has)
    i = w - 1 - below[rows, ::-1].argmax(axis=1)  # the last one before the peak
    # the next valid sample (the peak at the latest: always one); nearly always the very next
    j = i + 1  # <= the peak: i lies before it
    far = np.flatnonzero(~ok[rows, j])
    if far.size:
        rf = rows[far]
        after = ok[rf] & (col > i[far, None]) & (col <= ipeak[rf, None])
        j[far] = after.argmax(axis=1)
    ti, tj = t_s[i], t_s[j]
    yi, yj = y[rows, i], y[rows, j]
    bridge = ok[rows, j] & (tj - ti <= s.max_gap_s) & (yj > yi)
    with np.errstate(all="ignore"):
        frac = np.where(bridge, (thr[rows] - yi) / (yj - yi), 1.0)
        t_cross = ti + np.clip(frac, 0.0, 1.0) * (tj - ti)
        dur_h = (t_s[ipeak[rows]] - t_cross) / 3600.0
        rate[rows] = np.where(dur_h > 0, s.cone_span_c / dur_h, np.nan)
    return rate


_LOW_ALARMS = {"ramp": "too_low_heating", "hold": "too_low_hold", "cool": "too_low_cooling"}


def _stalls(
    t_s: np.ndarray,
    blocks: BlockSums,
    ramp_ranges: list[tuple[int, int, int]],
    names: tuple[str, ...],
    s: ConformanceSettings,
    start_ns: int,
    paused_s: Sequence[tuple[float, float]],
    row_shift: np.ndarray,
    ws: Workspace,
) -> list[tuple[Stall, int]]:
    """Least-squares heating rate over trailing windows of ``stall_window_s`` inside ramp
    segments, evaluated every block of about ``stall_step_s``; runs below the stall rate.

    Samples are summed per block of ``b`` samples once (``blocks``, shared with the segment
    rates); each window is then whole blocks, so it spans the stall window to within one
    block. A window must lie inside the ramp (the first minutes after a hold are the
    controller catching up, not a stall), must not overlap a declared pause (a flat curve is
    what the controller asked for) and must really span at least half the window (no long gap).
    """
    n = t_s.size
    win = s.stall_window_s
    b = blocks.b
    step = float(t_s[-1] - t_s[0]) / (n - 1) if n > 1 else s.stall_step_s
    g = blocks.t0_h.size
    if g == 0:
        return []
    first_t = t_s[0 : g * b : b]  # time of each block's first sample
    last_t = t_s[b - 1 : g * b : b]  # ... and last sample
    # per ramp: its windows' sums from shifted block slices, then one slope computation
    win_ends, win_starts, win_ramp, rates = [], [], [], []
    for j, lo, hi in ramp_ranges:
        g0 = -(-lo // b)  # first block starting inside the ramp
        g1 = hi // b  # blocks [g0, g1) end inside the ramp
        if g1 - g0 < 2 or t_s[hi - 1] - t_s[lo] < win:
            continue
        ends = np.arange(g0, g1)
        starts = np.searchsorted(first_t, last_t[ends] - win, side="left")
        ok = (starts >= g0) & (last_t[ends] - win >= t_s[lo] - 1e-9)
        ok &= (last_t[ends] - first_t[np.minimum(starts, g - 1)]) >= 0.5 * win
        for p0, p1 in paused_s:
            ok &= (last_t[ends] <= p0) | (first_t[np.minimum(starts, g - 1)] >= p1)
        if ok.any():
            e, st = ends[ok], starts[ok]
            sums = window_sums(
                blocks, e, st, ws.float("stall.sums", (5, blocks.sums.shape[1], e.size))
            )
            rates.append(ls_slope(sums))  # (K, windows of this ramp)
            win_ends.append(e)
            win_starts.append(st)
            win_ramp.append(np.full(e.size, j))
    if not win_ends:
        return []
    ends, starts = np.concatenate(win_ends), np.concatenate(win_starts)
    ramp = np.concatenate(win_ramp)
    rate = np.concatenate(rates, axis=1) if len(rates) > 1 else rates[0]  # (K, windows)
    with np.errstate(invalid="ignore"):
        slow = rate < s.stall_rate_c_h
    # a stall never runs from one ramp into the next
    r = runs(slow, last_t[ends], 1.5 * b * step, breaks=ramp[1:] != ramp[:-1])
    if r.row.size == 0:
        return []
    # by ramp, thermocouple, time; every field as an array first: a failing thermocouple's
    # spikes can make thousands of short stalls, and a per-stall Python loop over NumPy
    # scalars cost 9 us each (measured: the judge 5x slower on such data)
    order = np.lexsort((r.first, r.row, ramp[r.first]))
    rows, a0, a1 = r.row[order], r.first[order], r.last[order]
    shift = np.int64(start_ns) + row_shift[rows]
    begin = np.rint(first_t[starts[a0]] * NS_PER_S).astype(np.int64) + shift
    end = np.rint(last_t[ends[a1]] * NS_PER_S).astype(np.int64) + shift
    # slowest rate inside each run: runs of one row never overlap, so one reduceat over the
    # flat rates with [first, last + 1] pairs (a NaN pad makes last + 1 always an index)
    w = rate.shape[1]
    flat = np.append(rate.reshape(-1), np.nan)
    bounds = np.stack([rows * w + a0, rows * w + a1 + 1], axis=1).reshape(-1)
    slowest = np.fmin.reduceat(flat, bounds)[::2]
    return [
        (
            Stall(
                thermocouple=names[row],
                start_ns=b0,
                end_ns=b1,
                duration_s=(b1 - b0) / NS_PER_S,
                min_rate_c_h=m,
                segment=seg,
            ),
            row,
        )
        for row, b0, b1, m, seg in zip(
            rows.tolist(),
            begin.tolist(),
            end.tolist(),
            slowest.tolist(),
            ramp[a0].tolist(),
            strict=True,
        )
    ]
