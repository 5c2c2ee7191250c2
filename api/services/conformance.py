"""Glue to the analytics core for firing reports and the actual-vs-setpoint curve.

Called by routes/firings.py. Reads the firing's thermocouple series from the store, builds the
programme from the firing's ``programme_segments`` (analytics.programme) and asks the
conformance core for the report. Anything that makes a part of the report impossible (no
programme, no data) is listed in ``problems`` rather than raised: a report of a firing without
a programme still shows its temperatures.
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.conformance import ConformanceSettings, judge_curve, judge_firing
from api.metadata.store import FiringRow
from core.plant import Kiln
from ingest.contracts import Store

log = logging.getLogger(__name__)

FETCH_THREADS = 6


@dataclass(slots=True)
class Report:
    programme: dict[str, Any] | None
    tolerance_c: float
    score: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    thermocouples: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    energy_kwh: float | None = None


def load_programme(kiln: Kiln, firing: FiringRow):  # -> analytics.programme.Programme | None
    """The firing's programme, or None with the reason (never raises on bad segments)."""
    from analytics.programme import Programme, ProgrammeError

    if not firing.programme_segments:
        return None, "the kiln sent no programme_segments for this firing"
    try:
        segments = json.loads(firing.programme_segments)
        return Programme.from_segments(
            segments, name=firing.programme, max_temperature_c=kiln.max_temperature_c
        ), ""
    except (ValueError, TypeError, ProgrammeError) as exc:
        return None, f"programme_segments unusable: {exc}"


def _window(firing: FiringRow, now_ns: int) -> tuple[int, int]:
    end = firing.end_ns + 1 if firing.end_ns is not None else now_ns + 1
    return firing.start_ns, max(end, firing.start_ns + 1)


def _finite_list(a: np.ndarray) -> list[float | None]:
    return [x if math.isfinite(x) else None for x in a.astype(np.float64).tolist()]


def firing_curve(
    store: Store, kiln: Kiln, firing: FiringRow, *, now_ns: int, tolerance_c: float, points: int
) -> dict[str, Any]:
    """Thermocouples (window means) and the travelling setpoint on one time grid."""
    start, end = _window(firing, now_ns)
    window = max(10**9, -(-(end - start) // points) // 10**9 * 10**9)
    grid = np.arange(start // window * window, end, window, dtype=np.int64)
    tcs: dict[str, list[float | None]] = {}
    for f in kiln.thermocouple_fields():
        s = store.series(kiln.path, f, start, end, window_ns=window, aggregate="mean")
        col = np.full(grid.shape, np.nan)
        if len(s):
            idx = np.searchsorted(grid, s.time_ns.astype(np.int64))
            ok = (idx < grid.size) & (grid[np.minimum(idx, grid.size - 1)] == s.time_ns)
            col[idx[ok]] = s.values.astype(np.float64)[ok]
        tcs[f] = _finite_list(col)
    programme, _why = load_programme(kiln, firing)
    if programme is not None:
        # Window means sit at the window's centre, so judge the setpoint there too.
        setpoint = programme.setpoint_c((grid + window / 2 - start) / 1e9)
    else:  # fall back to the controller's own zone-1 setpoint
        sp = store.series(kiln.path, "zone1_setpoint_c", start, end, window_ns=window)
        setpoint = np.full(grid.shape, np.nan)
        if len(sp):
            idx = np.searchsorted(grid, sp.time_ns.astype(np.int64))
            ok = idx < grid.size
            setpoint[idx[ok]] = sp.values.astype(np.float64)[ok]
    return {
        "asset": kiln.path,
        "firing_id": firing.firing_id,
        "start_ns": start,
        "end_ns": end,
        "tolerance_c": tolerance_c,
        "time_ns": grid.tolist(),
        "setpoint_c": _finite_list(setpoint),
        "thermocouples": tcs,
    }


def firing_report(
    store: Store, kiln: Kiln, firing: FiringRow, *, now_ns: int, tolerance_c: float
) -> Report:
    """The conformance report of one firing (see module docstring)."""
    start, end = _window(firing, now_ns)
    if kiln.kind == "tunnel":
        return tunnel_report(store, kiln, firing, start, end, tolerance_c)
    programme, why = load_programme(kiln, firing)
    report = Report(programme.to_dict() if programme else None, tolerance_c)
    if why:
        report.problems.append(why)
    report.energy_kwh = _energy(store, kiln, start, end)
    if programme is None:
        return report
    time_ns, temps, quality = thermocouple_matrix(store, kiln, start, end)
    if time_ns.size == 0:
        report.problems.append("no thermocouple readings during this firing")
        return report
    result = judge_firing(
        programme,
        time_ns,
        temps,
        quality,
        start_ns=firing.start_ns,
        thermocouples=kiln.thermocouple_fields(),
        settings=judging_settings(time_ns, tolerance_c),
    )
    d = result.to_dict()
    if firing.end_ns is None:
        _in_progress(d, now_ns, firing.start_ns, programme.duration_s)
    _fill(report, d, tolerance_c)
    return report


def _in_progress(d: dict[str, Any], now_ns: int, start_ns: int, duration_s: float) -> None:
    """A running firing's coverage is measured against the whole programme, most of which has
    not happened yet: add the coverage of the time so far, and say "in progress" instead of
    "insufficient data" when what has happened is well covered."""
    programme_ns = duration_s * 1e9
    elapsed = min(now_ns - start_ns, programme_ns)
    if d.get("coverage") is None or elapsed <= 0:
        return
    so_far = min(1.0, d["coverage"] * programme_ns / elapsed)
    d["coverage_so_far"] = so_far
    d["in_progress"] = True
    if d.get("verdict") == "insufficient data" and so_far >= DEFAULT_MIN_COVERAGE:
        d["verdict"] = "in progress"


# A gap is "missing data" relative to how often the kiln is sampled: never bridge more than
# MIN_GAP_S (the analytics default) on a finely sampled kiln, but a source sampled every 5 min
# (a slow OPC UA publishing interval, the demo's fast clock) must not make every gap "missing".
MIN_GAP_S = 300.0
DEFAULT_MIN_COVERAGE = ConformanceSettings().min_coverage
GAP_SAMPLES = 3.0


def judging_settings(time_ns: np.ndarray, tolerance_c: float) -> ConformanceSettings:
    """Judging rules for these samples: the ±band, and a gap limit of three typical sampling
    intervals, at least :data:`MIN_GAP_S`."""
    step_s = float(np.median(np.diff(time_ns))) / 1e9 if time_ns.size > 2 else 0.0
    return ConformanceSettings(band_c=tolerance_c, max_gap_s=max(MIN_GAP_S, GAP_SAMPLES * step_s))


def _energy(store: Store, kiln: Kiln, start: int, end: int) -> float | None:
    energy = store.series(kiln.path, "energy_kwh", start, end)
    if len(energy) < 2:
        return None
    return float(energy.values[-1] - energy.values[0])


def _fill(report: Report, d: dict[str, Any], tolerance_c: float) -> None:
    """Move an analytics FiringReport dict into the API's report shape."""
    report.score = d["score"]
    report.thermocouples = d.pop("thermocouples")
    report.segments = d.pop("segments")
    excursions = d.pop("excursions")
    stalls = d.pop("stalls")
    d.pop("settings", None)
    report.summary = d
    report.events = [
        {
            "kind": "excursion",
            "subject": e["thermocouple"],
            "start_ns": e["start_ns"],
            "end_ns": e["end_ns"],
            "peak_deviation_c": e["worst_deviation_c"],
            "detail": f"{e['duration_s'] / 60:.0f} min outside ±{tolerance_c:g} °C",
        }
        for e in excursions
    ] + [
        {
            "kind": "stall",
            "subject": st["thermocouple"],
            "start_ns": st["start_ns"],
            "end_ns": st["end_ns"],
            "peak_deviation_c": None,
            "detail": f"rising only {st['min_rate_c_h']:.1f} °C/h",
        }
        for st in stalls
    ]
    report.events.sort(key=lambda e: e["start_ns"])
    if d.get("verdict") == "insufficient data":
        report.problems.append("too little valid data to judge this firing")


# A tunnel kiln's "firing" is a campaign of weeks; its report covers the most recent day.
TUNNEL_REPORT_NS = 24 * 3600 * 10**9


def tunnel_report(
    store: Store, kiln: Kiln, firing: FiringRow, start: int, end: int, tolerance_c: float
) -> Report:
    """A tunnel kiln holds a profile along its length, not a programme in time: judge each
    zone's thermocouples against that zone's own setpoint series (``zone{z}_setpoint_c``) with
    ``analytics.conformance.judge_curve``, then combine the zones (score = mean share in band
    over the thermocouples; verdict conforming only if every zone conforms)."""
    report = Report(None, tolerance_c)
    if end - start > TUNNEL_REPORT_NS:
        start = end - TUNNEL_REPORT_NS
        report.problems.append("tunnel kiln campaign: the report covers the last 24 h")
    report.energy_kwh = _energy(store, kiln, start, end)
    zone_dicts = []
    for z in range(1, kiln.zones + 1):
        fields_ = [
            f"zone{z}_tc{t}_temperature_c" for t in range(1, kiln.thermocouples_per_zone + 1)
        ]
        got = [store.series(kiln.path, f, start, end) for f in fields_]
        sp = store.series(kiln.path, f"zone{z}_setpoint_c", start, end)
        if not len(sp) or not any(len(g) for g in got):
            report.problems.append(f"zone {z}: no setpoint or thermocouple data")
            continue
        t = np.unique(np.concatenate([g.time_ns for g in got if len(g)])).astype(np.int64)
        temps = np.full((len(fields_), t.size), np.nan)
        quality = np.full((len(fields_), t.size), 2, dtype=np.uint8)
        for k, g in enumerate(got):
            if len(g):
                idx = np.searchsorted(t, g.time_ns)
                temps[k, idx] = g.values.astype(np.float64)
                quality[k, idx] = g.quality
        # The zone setpoint holds until it changes (step interpolation, no look-ahead).
        pos = np.searchsorted(sp.time_ns, t, side="right") - 1
        setpoint = np.where(pos >= 0, sp.values.astype(np.float64)[np.maximum(pos, 0)], np.nan)
        settings = judging_settings(t, tolerance_c)
        r = judge_curve(
            t, setpoint, temps, quality, name=f"zone {z}", thermocouples=fields_, settings=settings
        )
        zone_dicts.append(r.to_dict())
    if not zone_dicts:
        return report
    tcs = [tc for d in zone_dicts for tc in d["thermocouples"]]
    shares = [tc["share_in_band"] for tc in tcs if tc["share_in_band"] is not None]
    devs = [d["max_abs_deviation_c"] for d in zone_dicts if d["max_abs_deviation_c"] is not None]
    verdicts = {d["verdict"] for d in zone_dicts}
    combined = {
        "programme": "",
        "start_ns": min(d["start_ns"] for d in zone_dicts),
        "end_ns": max(d["end_ns"] for d in zone_dicts),
        "band_c": tolerance_c,
        "verdict": "nonconforming"
        if "nonconforming" in verdicts
        else "conforming"
        if verdicts == {"conforming"}
        else sorted(verdicts)[0],
        "score": sum(shares) / len(shares) if shares else None,
        "coverage": float(np.mean([d["coverage"] or 0.0 for d in zone_dicts])),
        "max_abs_deviation_c": max(devs) if devs else None,
        "method": "tunnel kiln: each zone judged against its own setpoint",
        "thermocouples": tcs,
        "segments": [],
        "excursions": [e for d in zone_dicts for e in d["excursions"]],
        "stalls": [],
    }
    _fill(report, combined, tolerance_c)
    return report


def thermocouple_matrix(
    store: Store, kiln: Kiln, start_ns: int, end_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All thermocouples of a kiln on one time axis: ``(time_ns (N,), temps_c (K, N),
    quality (K, N))``, NaN / BAD where a thermocouple has no sample at a time."""
    fields_ = kiln.thermocouple_fields()
    # One query per thermocouple, a few in flight at once: a networked store (InfluxDB) answers
    # them in parallel; the embedded store serialises them on its lock at no extra cost.
    with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(fields_))) as pool:
        got = list(pool.map(lambda f: store.series(kiln.path, f, start_ns, end_ns), fields_))
    non_empty = [s.time_ns for s in got if len(s)]
    if not non_empty:
        return np.zeros(0, np.int64), np.zeros((len(fields_), 0)), np.zeros((len(fields_), 0))
    t = np.unique(np.concatenate(non_empty)).astype(np.int64)
    temps = np.full((len(fields_), t.size), np.nan)
    quality = np.full((len(fields_), t.size), 2, dtype=np.uint8)
    for k, s in enumerate(got):
        if len(s):
            idx = np.searchsorted(t, s.time_ns)
            temps[k, idx] = s.values.astype(np.float64)
            quality[k, idx] = s.quality
    return t, temps, quality
