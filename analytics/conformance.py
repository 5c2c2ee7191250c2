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
    block_sums_local,
    interval_weights,
    ls_slope,
    runs,
    segments_sums,
    sparse_runs,
)
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


class Workspace:
    """Scratch arrays reused from one firing to the next.

    A fresh multi-megabyte NumPy temporary is a fresh mmap: the kernel zero-fills every page on
    first touch, which costs several times the arithmetic itself. Reusing named buffers keeps
    the judge near memory speed. Not thread-safe: one workspace per thread.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def _get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        size = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(max(size, 1), dtype=dtype)
            self._buffers[name] = buf
        return buf[:size].reshape(shape)

    def float(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._get(name, shape, np.float64)

    def bool(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._get(name, shape, np.bool_)


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
    return _judge_group(programme, t, y, q, names, start_ns, pauses, settings, workspace)[0]


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
    """Checked inputs of one firing (or of ``len(shifts_ns)`` firings stacked in ``y`` that
    share its programme time axis, see :func:`_judge`) -> reports."""
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
            yy = y[i:j, :, :n].reshape((j - i) * k, n)
            if not np.issubdtype(yy.dtype, np.floating):
                yy = yy.astype(np.float64)
            qq = None if quality is None else np.asarray(quality)[i:j, :, :n].reshape(-1, n)
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
    return _judge(
        t, start, end, end - start, sp, y, q, names, (), np.zeros(1, int), [], name, settings, ()
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
    """Judge ``len(shifts_ns)`` firings at once whose rows are stacked in ``y``: firing ``f``
    is rows ``[f*K, (f+1)*K)`` (K = ``len(names)``) and happened ``shifts_ns[f]`` after the
    one described by ``t_ns``/``start_ns``/... (same programme time axis, no pauses).

    Why: every NumPy call costs microseconds of dispatch whatever its size; a firing needs a
    few hundred, so judging several firings that share a time axis in one set of calls
    amortises that cost (see the benchmark section of docs/analytics-firing.md). Everything
    except the kiln-level aggregates is per thermocouple row anyway."""
    rows_all, n = y.shape
    k = len(names)
    t_s = (t_ns - np.int64(start_ns)).astype(np.float64) / NS_PER_S
    # Wall time during which the setpoint exists: what coverage is measured against.
    judged_s = max(cover_ns / NS_PER_S, 0.0)
    kk = rows_all  # rows judged together

    ws = ws or Workspace()
    # Validity and deviation. Every (K, N) temporary lives in the workspace (see Workspace);
    # invalid samples hold 0 in d / a / y0, so plain sums and argmax need no masks.
    temps_ok = np.isfinite(y, out=ws.bool("temps_ok", (kk, n)))
    if q is not None:
        temps_ok &= q <= s.max_quality
    judged = np.isfinite(sp)  # (N,): the setpoint exists
    not_ok = np.logical_not(temps_ok, out=ws.bool("not_ok", (kk, n)))
    bad_rows, bad_cols = _sparse(not_ok)  # unusable readings: few, kept as a list
    all_ok = bad_rows.size == 0
    d = np.subtract(y, sp[None, :], out=ws.float("d", (kk, n)))
    d[bad_rows, bad_cols] = 0.0
    _zero_unjudged(d, judged)
    # valid = usable reading where the setpoint exists
    bad_judged = judged[bad_cols]
    n_valid = int(judged.sum()) - np.bincount(bad_rows[bad_judged], minlength=kk)
    if all_ok and y.dtype == np.float64:
        y0 = y  # nothing to blank out: no copy
    else:
        y0 = ws.float("y0", (kk, n))
        np.copyto(y0, y)
        y0[bad_rows, bad_cols] = 0.0

    a = np.abs(d, out=ws.float("a", (kk, n)))
    # valid (for weights) = usable reading and judged; judged columns enter via the weights
    # Few unusable samples (plant data): shared weights + sparse corrections; many (e.g. own
    # timestamps per thermocouple on a union axis): a dense weight array is cheaper.
    if bad_rows.size > 0.2 * kk * n:
        weights = DenseWeights(t_s, judged, temps_ok, s.max_gap_s)
    else:
        weights = SampleWeights(t_s, judged, temps_ok, bad_rows, bad_cols, s.max_gap_s)
    wsum = covered_s = weights.total()
    rows_k = np.arange(kk)
    if n:
        imax = a.argmax(axis=1)
        a_max = a[rows_k, imax]
        max_abs = np.where(n_valid > 0, a_max, np.nan)
    else:
        imax, a_max, max_abs = np.zeros(kk, int), np.zeros(kk), np.full(kk, np.nan)
    # outside the band: rare, so handled as a sparse list of (row, column), and only rows whose
    # largest deviation leaves the band are scanned (invalid samples: a == 0)
    out_rows, out_cols = _outside(a, a_max, s.band_c, ws)
    out_w = weights.at(out_rows, out_cols, temps_ok) if n else np.zeros(0)
    with np.errstate(all="ignore"):
        mean_abs = weights.weighted_sum(a) / wsum
        wd2 = weights.weighted_sum_sq(d)
        rms = np.sqrt(wd2 / wsum)
        w_out = np.bincount(out_rows, weights=out_w, minlength=kk).astype(np.float64)
        share = 1.0 - w_out / wsum
        coverage = np.clip(covered_s / judged_s, 0.0, 1.0) if judged_s > 0 else np.zeros(kk)
    undefined = wsum <= 0
    mean_abs[undefined] = rms[undefined] = share[undefined] = np.nan

    # segments: per-row arrays first, reports per firing below
    t_h = t_s / 3600.0
    seg_idx_at = np.full(n, -1, dtype=np.int64)
    ramp_ranges = []
    blocks = None
    if spans and n:
        # per-block sums, shared by the segment rates and the stall windows: one pair of
        # passes over the samples for both
        blocks = block_sums_local(t_h, y0, bad_rows, bad_cols, _stall_block(t_s, s))
        seg_bounds = np.maximum.accumulate(np.asarray(bounds[: len(spans) + 1], dtype=np.int64))
        achieved_all = ls_slope(segments_sums(t_h, y0, bad_rows, bad_cols, seg_bounds, blocks))
    # peaks: per segment, and the firing's peak from the segments' (plus what lies outside
    # them) - one pass over y0 for both
    peak_parts: list[tuple[np.ndarray, np.ndarray]] = []
    covered_to = int(bounds[0]) if spans else 0
    tiled = True  # the segment ranges tile [bounds[0], bounds[-1]) in order
    if covered_to > 0:
        peak_parts.append(_masked_argmax(y0, temps_ok, 0, min(covered_to, n), ws))
    seg_rows = []  # per segment: (lo, hi, achieved, soak, hold max |dev|, hold valid, peaks)
    for j, span in enumerate(spans):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        hi = max(hi, lo)
        tiled &= lo == covered_to
        covered_to = hi
        seg_idx_at[lo:hi] = j
        achieved = achieved_all[:, j] if n else np.full(kk, np.nan)
        soak = hold_max = hold_valid = None
        if span.kind == "hold":
            in_seg = (out_cols >= lo) & (out_cols < hi)
            w_out_seg = np.bincount(out_rows[in_seg], weights=out_w[in_seg], minlength=kk)
            soak = np.where(n_valid > 0, weights.total(lo, hi) - w_out_seg, np.nan)
            bad_here = judged[bad_cols] & (bad_cols >= lo) & (bad_cols < hi)
            hold_valid = int(judged[lo:hi].sum()) - np.bincount(bad_rows[bad_here], minlength=kk)
            hold_max = a[:, lo:hi].max(axis=1) if hi > lo else np.zeros(kk)
        if span.kind == "ramp":
            ramp_ranges.append((j, lo, hi))
        if hi > lo:
            ip, seg_peak = _masked_argmax(y0, temps_ok, lo, hi, ws)
            peak_parts.append((ip, seg_peak))
        else:
            ip, seg_peak = np.zeros(kk, dtype=np.int64), np.full(kk, np.nan)
        seg_rows.append((achieved, soak, hold_max, hold_valid, ip, seg_peak))
    if covered_to < n:
        peak_parts.append(_masked_argmax(y0, temps_ok, covered_to, n, ws))

    # peaks and the cone equivalent (over valid temperatures, setpoint or not: heat work counts
    # during a natural cool too)
    if tiled and peak_parts:
        ipeak, peak = _first_max(peak_parts)
    else:
        ipeak, peak = _masked_argmax(y0, temps_ok, 0, n, ws)
    has_peak = np.isfinite(peak)
    rate100 = _last_span_rate(t_s, y, temps_ok, ipeak, peak, s, ws)
    cones = cone_equivalent(peak, rate100)

    n_firings = len(shifts_ns)
    row_shift = np.repeat(np.asarray(shifts_ns, dtype=np.int64), k)
    all_names = names * n_firings
    r_out = sparse_runs(out_rows, out_cols, t_s, s.max_gap_s, bad_rows * n + bad_cols, n)
    excursions = _excursions(t_ns, t_s, d, r_out, seg_idx_at, spans, all_names, s, row_shift)
    paused_s = [((a - start_ns) / NS_PER_S, (b - start_ns) / NS_PER_S) for a, b in pauses]
    stalls = (
        _stalls(t_s, blocks, ramp_ranges, all_names, s, start_ns, paused_s, row_shift)
        if ramp_ranges and n >= 3 and blocks is not None
        else []
    )

    # one report per firing
    per_row = {
        "n_valid": n_valid.tolist(),
        "coverage": coverage.tolist(),
        "max_abs": max_abs.tolist(),
        "max_ns": t_ns[imax].tolist() if n else [0] * kk,
        "mean_abs": mean_abs.tolist(),
        "rms": rms.tolist(),
        "share": share.tolist(),
        "peak": peak.tolist(),
        "peak_ns": t_ns[ipeak].tolist() if n else [0] * kk,
        "has_peak": has_peak.tolist(),
        "rate100": rate100.tolist(),
        "cone": cones.cone.tolist(),
        "clamped": cones.rate_clamped.tolist(),
    }
    seg_lists = [
        (
            ach.tolist(),
            None if soak is None else soak.tolist(),
            t_ns[ip].tolist() if n else [0] * kk,
            pk.tolist(),
        )
        for ach, soak, _, _, ip, pk in seg_rows
    ]
    exc_by = [[] for _ in range(n_firings)]
    for e, row in excursions:
        exc_by[row // k].append(e)
    stall_by = [[] for _ in range(n_firings)]
    for st_, row in stalls:
        stall_by[row // k].append(st_)
    spreads = _spreads(t_ns, t_s, y, temps_ok, q is not None, bad_rows, bad_cols, k, s)
    reports = []
    for f, shift in enumerate(shifts_ns):
        r0, r1 = f * k, (f + 1) * k
        sl = slice(r0, r1)
        spread_max, spread_max_ns, spread_mean = spreads[f]
        spread_max_ns = None if spread_max_ns is None else spread_max_ns + shift
        segments = []
        hold_worst = []
        for j, span in enumerate(spans):
            ach_l, soak_l, ip_ns_l, pk_l = seg_lists[j]
            _, _, hold_max, hold_valid, _, _ = seg_rows[j]
            if hold_valid is not None and int(hold_valid[sl].sum()) > 0:  # any valid sample
                hold_worst.append(float(hold_max[sl].max()))
            pk = pk_l[r0:r1]
            segments.append(
                SegmentReport(
                    index=j,
                    kind=span.kind,
                    start_ns=int(seg_starts_ns[j]) + shift,
                    end_ns=None
                    if span.kind == "natural_cool"
                    else _span_end_ns(span, seg_starts_ns, j, spans, end_ns) + shift,
                    programmed_rate_c_h=span.rate_c_h,
                    achieved_rate_c_h=tuple(ach_l[r0:r1]),
                    programmed_hold_s=span.hold_s,
                    soak_in_band_s=None if soak_l is None else tuple(soak_l[r0:r1]),
                    peak_c=tuple(pk),
                    peak_ns=tuple(
                        tn + shift if v == v else None
                        for tn, v in zip(ip_ns_l[r0:r1], pk, strict=True)
                    ),
                )
            )
        uni = max(hold_worst) if hold_worst else math.nan
        columns = zip(
            names,
            *(per_row[key][r0:r1] for key in per_row),
            strict=True,
        )
        tcs = tuple(
            ThermocoupleReport(
                name=name,
                samples=n,
                valid_samples=nv,
                coverage=cov,
                max_abs_deviation_c=mx,
                max_abs_deviation_ns=mx_ns + shift if nv > 0 else None,
                mean_abs_deviation_c=mean,
                rms_deviation_c=r,
                share_in_band=sh,
                peak_c=pk,
                peak_ns=pk_ns + shift if has else None,
                last_100c_rate_c_h=rate,
                cone=cone,
                cone_rate_clamped=clamped,
            )
            for (name, nv, cov, mx, mx_ns, mean, r, sh, pk, pk_ns, has, rate, cone, clamped) in (
                columns
            )
        )
        ws_f, wd2_f, w_out_f = wsum[sl], wd2[sl], w_out[sl]
        wtot = float(ws_f.sum())
        with np.errstate(all="ignore"):
            kiln_mean = (
                float((mean_abs[sl] * ws_f)[ws_f > 0].sum() / wtot) if wtot > 0 else math.nan
            )
            kiln_rms = float(math.sqrt(wd2_f.sum() / wtot)) if wtot > 0 else math.nan
            score = float(1.0 - w_out_f.sum() / wtot) if wtot > 0 else math.nan
        kiln_cov = float(coverage[sl].mean()) if k else 0.0
        if wtot <= 0:
            verdict = "undefined"
        elif kiln_cov < s.min_coverage:
            verdict = "insufficient data"
        elif exc_by[f] or stall_by[f]:
            verdict = "nonconforming"
        else:
            verdict = "conforming"
        cone_f = cones.cone[sl]
        finite_cones = cone_f[np.isfinite(cone_f)]
        max_f = max_abs[sl]
        reports.append(
            FiringReport(
                programme=programme_name,
                start_ns=int(start_ns) + shift,
                end_ns=int(end_ns) + shift,
                band_c=s.band_c,
                verdict=verdict,
                score=score,
                coverage=kiln_cov,
                max_abs_deviation_c=float(np.nanmax(max_f))
                if np.isfinite(max_f).any()
                else math.nan,
                mean_abs_deviation_c=kiln_mean,
                rms_deviation_c=kiln_rms,
                spread_max_c=spread_max,
                spread_max_ns=spread_max_ns,
                spread_mean_c=spread_mean,
                uniformity_c=uni,
                uniformity_class=int(uniformity_class(uni)),
                cone_min=float(finite_cones.min()) if finite_cones.size else math.nan,
                cone_max=float(finite_cones.max()) if finite_cones.size else math.nan,
                thermocouples=tcs,
                segments=tuple(segments),
                excursions=tuple(exc_by[f]),
                stalls=tuple(stall_by[f]),
                settings=s,
            )
        )
    return reports


def _spreads(
    t_ns: np.ndarray,
    t_s: np.ndarray,
    y: np.ndarray,
    temps_ok: np.ndarray,
    has_quality: bool,
    bad_rows: np.ndarray,
    bad_cols: np.ndarray,
    k: int,
    s: ConformanceSettings,
) -> list[tuple[float, int | None, float]]:
    """Spread across each firing's thermocouples (rows ``[f*k, (f+1)*k)`` of ``y``), where at
    least two read: ``(max, when, time-weighted mean)`` per firing, all firings of a group in
    one set of calls. The count of readers comes from the sparse list of unusable samples:
    no pass over the (K, N) mask."""
    rows, n = y.shape
    g = rows // k
    yg = y.reshape(g, k, n)
    counts = np.bincount((bad_rows // k) * n + bad_cols, minlength=g * n).reshape(g, n)
    with np.errstate(all="ignore"):
        both = (k - counts) >= 2
        if not has_quality:  # invalid == NaN (or ±inf, caught below): fmax/fmin skip NaN
            hi_c, lo_c = np.fmax.reduce(yg, axis=1), np.fmin.reduce(yg, axis=1)
        if has_quality or not (np.isfinite(hi_c).all() and np.isfinite(lo_c).all()):
            okg = temps_ok.reshape(g, k, n)
            hi_c = np.maximum.reduce(yg, axis=1, where=okg, initial=-np.inf)
            lo_c = np.minimum.reduce(yg, axis=1, where=okg, initial=np.inf)
        spread = np.where(both, hi_c - lo_c, np.nan)
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


def _span_end_ns(
    span: SegmentSpan, starts_ns: Sequence[int], j: int, spans: Sequence[SegmentSpan], end_ns: int
) -> int:
    return int(starts_ns[j + 1]) if j + 1 < len(spans) else int(end_ns)


def _zero_unjudged(d: np.ndarray, judged: np.ndarray) -> None:
    """Set the columns of ``d`` where the setpoint does not exist to 0. The setpoint normally
    exists over one stretch (before the start and in a natural cool it does not): two slice
    fills then, not a masked pass."""
    if judged.all():
        return
    at = np.flatnonzero(judged)
    if at.size and at[-1] - at[0] + 1 == at.size:
        d[:, : at[0]] = 0.0
        d[:, at[-1] + 1 :] = 0.0
    elif at.size == 0:
        d[...] = 0.0
    else:
        d[:, ~judged] = 0.0


def _outside(
    a: np.ndarray, a_max: np.ndarray, band_c: float, ws: Workspace
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (row, column) list of ``a > band_c``, scanning only rows with ``a_max > band_c``
    (most thermocouples of a good firing never leave the band)."""
    k, n = a.shape
    hot = np.flatnonzero(a_max > band_c)
    if hot.size == 0 or n == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e
    if hot.size == k:
        return _sparse(np.greater(a, band_c, out=ws.bool("outside", (k, n))))
    r, c = _sparse(np.greater(a[hot], band_c))
    return hot[r], c


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


def _stall_block(t_s: np.ndarray, s: ConformanceSettings) -> int:
    """Samples per block of about ``stall_step_s`` (mean sampling interval; gaps make it
    larger: blocks get fewer samples, never wrong); at least 3 blocks per firing."""
    n = t_s.size
    step = float(t_s[-1] - t_s[0]) / (n - 1) if n > 1 else s.stall_step_s
    return int(min(max(1, round(s.stall_step_s / step)) if step > 0 else 1, max(n // 3, 1)))


def _sparse(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every True in ``flag`` (K, N), row-major sorted.

    One flat scan: ``np.flatnonzero`` on a contiguous bool array is ~25x faster than the 2-D
    ``np.nonzero`` (which builds index tuples column by column)."""
    flat = np.flatnonzero(flag)
    if flat.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e
    rows, cols = np.divmod(flat, flag.shape[1])
    return rows, cols


def _masked_argmax(
    y0: np.ndarray, ok: np.ndarray, lo: int, hi: int, ws: Workspace
) -> tuple[np.ndarray, np.ndarray]:
    """Index (absolute) and value of each row's largest valid sample in ``[lo, hi)``; NaN value
    where the row has none. ``y0`` holds 0 at invalid samples, so a plain argmax is right
    whenever it lands on a valid sample (any kiln above 0 °C); rows where it does not fall back
    to a masked pass."""
    k = y0.shape[0]
    rows = np.arange(k)
    if hi <= lo:
        return np.zeros(k, dtype=np.int64), np.full(k, np.nan)
    idx = y0[:, lo:hi].argmax(axis=1)
    good = ok[rows, lo + idx]
    value = y0[rows, lo + idx]
    if not good.all():
        for r in np.nonzero(~good)[0]:  # rows with no valid sample, or all below 0 °C
            m = ok[r, lo:hi]
            if m.any():
                vals = np.where(m, y0[r, lo:hi], -np.inf)
                idx[r] = int(vals.argmax())
                value[r] = vals[idx[r]]
            else:
                value[r] = np.nan
    return lo + idx, value


# Firings sharing a programme time axis are judged together up to this many samples: large
# enough to amortise NumPy's per-call cost over several firings, small enough that the
# scratch arrays (a few of this size) stay in cache. Measured per firing of 24 x 8640
# (CPU ms): 1 firing per group 12.4, 2: 10.1, 4: 10.0, 10: 10.7, 20: 11.4 -> ~5 firings.
_GROUP_CELLS = 1 << 20

_CONE_WINDOW = 1024  # samples searched before a peak for the 100 °C crossing, before a full scan


def _last_span_rate(
    t_s: np.ndarray,
    y: np.ndarray,
    ok: np.ndarray,
    ipeak: np.ndarray,
    peak: np.ndarray,
    s: ConformanceSettings,
    ws: Workspace,
) -> np.ndarray:
    """Heating rate (°C/h) over the last ``cone_span_c`` before each thermocouple's peak: the
    time from the last valid sample below ``peak - span`` before the peak (crossing found by
    linear interpolation to the next valid sample when no gap lies between; else that next
    sample's time) to the peak."""
    k, n = y.shape
    rate = np.full(k, np.nan)
    if n < 2:
        return rate
    thr = peak - s.cone_span_c
    last = np.full(k, -1, dtype=np.int64)  # last valid sample below thr before the peak
    nxt = ipeak.astype(np.int64, copy=True)  # the next valid sample after it (peak at latest)
    # Look in a window just before the peak first: the last 100 °C usually takes well under
    # `_CONE_WINDOW` samples, so this reads (K, W) samples instead of (K, N); rows not settled
    # there are scanned in full.
    w = min(_CONE_WINDOW, n)
    cand = np.flatnonzero(np.isfinite(peak))
    if cand.size:
        cols = ipeak[cand, None] - w + np.arange(w)[None, :]  # ends just before the peak
        cc = np.maximum(cols, 0)
        rr = cand[:, None]
        ok_w = ok[rr, cc] & (cols >= 0)
        with np.errstate(invalid="ignore"):
            below_w = (y[rr, cc] < thr[cand, None]) & ok_w
        found = np.flatnonzero(below_w.any(axis=1))
        if found.size:
            pos = w - 1 - below_w[found, ::-1].argmax(axis=1)
            last[cand[found]] = cols[found, pos]
            after = ok_w[found] & (np.arange(w)[None, :] > pos[:, None])
            has_next = after.any(axis=1)
            nxt[cand[found[has_next]]] = cols[found[has_next], after[has_next].argmax(axis=1)]
        rest = cand[~below_w.any(axis=1) & (ipeak[cand] > w)]  # window short of the start
        if rest.size:
            col = np.arange(n)[None, :]
            with np.errstate(invalid="ignore"):
                below = np.less(y[rest], thr[rest, None])
            below &= ok[rest]
            below &= col < ipeak[rest, None]
            any_below = below.any(axis=1)
            rest = rest[any_below]
            pos = n - 1 - below[any_below, ::-1].argmax(axis=1)
            last[rest] = pos
            after = ok[rest] & (col > pos[:, None]) & (col <= ipeak[rest, None])
            nxt[rest] = after.argmax(axis=1)  # the peak itself is valid: always one
    has = last >= 0
    if not has.any():
        return rate
    rows = np.nonzero(has)[0]
    i = last[rows]
    j = nxt[rows]
    ti, tj = t_s[i], t_s[j]
    yi, yj = y[rows, i], y[rows, j]
    bridge = ok[rows, j] & (tj - ti <= s.max_gap_s) & (yj > yi)
    with np.errstate(all="ignore"):
        frac = np.where(bridge, (thr[rows] - yi) / (yj - yi), 1.0)
        t_cross = ti + np.clip(frac, 0.0, 1.0) * (tj - ti)
        dur_h = (t_s[ipeak[rows]] - t_cross) / 3600.0
        rate[rows] = np.where(dur_h > 0, s.cone_span_c / dur_h, np.nan)
    return rate


def _excursions(
    t_ns: np.ndarray,
    t_s: np.ndarray,
    d: np.ndarray,
    r: Runs,
    seg_idx_at: np.ndarray,
    spans: Sequence[SegmentSpan],
    names: tuple[str, ...],
    s: ConformanceSettings,
    row_shift: np.ndarray,
) -> list[tuple[Excursion, int]]:
    """Excursions (with their row) from runs outside the band; row ``r`` happened
    ``row_shift[r]`` ns after ``t_ns`` says."""
    if r.row.size == 0:
        return []
    dur = t_s[r.last] - t_s[r.first]
    keep = np.nonzero(dur >= s.min_excursion_s)[0]
    out = []
    for i in keep:  # one iteration per excursion found, not per sample
        row, a0, a1 = int(r.row[i]), int(r.first[i]), int(r.last[i])
        seg = d[row, a0 : a1 + 1]
        w = a0 + int(np.abs(seg).argmax())
        shift = int(row_shift[row])
        out.append(
            (
                Excursion(
                    thermocouple=names[row],
                    start_ns=int(t_ns[a0]) + shift,
                    end_ns=int(t_ns[a1]) + shift,
                    duration_s=float(dur[i]),
                    worst_deviation_c=float(d[row, w]),
                    worst_ns=int(t_ns[w]) + shift,
                    segment=int(seg_idx_at[w]),
                    alarm=_alarm(float(d[row, w]), int(seg_idx_at[w]), spans),
                ),
                row,
            )
        )
    return out


_LOW_ALARMS = {"ramp": "too_low_heating", "hold": "too_low_hold", "cool": "too_low_cooling"}


def _alarm(worst_c: float, segment: int, spans: Sequence[SegmentSpan]) -> str:
    if worst_c > 0:
        return "too_high"
    kind = spans[segment].kind if 0 <= segment < len(spans) else ""
    return _LOW_ALARMS.get(kind, "too_low")


def _stalls(
    t_s: np.ndarray,
    blocks: BlockSums,
    ramp_ranges: list[tuple[int, int, int]],
    names: tuple[str, ...],
    s: ConformanceSettings,
    start_ns: int,
    paused_s: Sequence[tuple[float, float]],
    row_shift: np.ndarray,
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
    sums = blocks.global_sums()  # (5, K, G)
    # prefix sums laid out (G + 1, 5, K): gathering a window's ends then copies contiguous
    # (5, K) slabs instead of picking scattered elements along the last axis (~10x cheaper)
    prefix = np.zeros((g + 1, 5, sums.shape[1]))
    np.cumsum(sums.transpose(2, 0, 1), axis=0, out=prefix[1:])
    first_t = t_s[0 : g * b : b]  # time of each block's first sample
    last_t = t_s[b - 1 : g * b : b]  # ... and last sample
    # windows of every ramp, evaluated together: one gather and one slope computation
    win_ends, win_starts, win_ramp = [], [], []
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
            win_ends.append(ends[ok])
            win_starts.append(starts[ok])
            win_ramp.append(np.full(int(ok.sum()), j))
    if not win_ends:
        return []
    ends, starts = np.concatenate(win_ends), np.concatenate(win_starts)
    ramp = np.concatenate(win_ramp)
    rate = ls_slope((prefix[ends + 1] - prefix[starts]).transpose(1, 2, 0))  # (K, windows)
    slow = rate < s.stall_rate_c_h
    # a stall never runs from one ramp into the next
    r = runs(slow, last_t[ends], 1.5 * b * step, breaks=ramp[1:] != ramp[:-1])
    out: list[tuple[Stall, int]] = []
    for i in np.lexsort((r.first, r.row, ramp[r.first])):  # by ramp, thermocouple, time
        row, a0, a1 = int(r.row[i]), int(r.first[i]), int(r.last[i])
        begin = start_ns + round(first_t[starts[a0]] * NS_PER_S) + int(row_shift[row])
        end = start_ns + round(last_t[ends[a1]] * NS_PER_S) + int(row_shift[row])
        out.append(
            (
                Stall(
                    thermocouple=names[row],
                    start_ns=begin,
                    end_ns=end,
                    duration_s=(end - begin) / NS_PER_S,
                    min_rate_c_h=float(np.nanmin(rate[row, a0 : a1 + 1])),
                    segment=int(ramp[a0]),
                ),
                row,
            )
        )
    return out
