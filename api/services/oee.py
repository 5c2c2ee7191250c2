"""OEE of assets and their roll-ups, from telemetry and gradings, via the analytics core.

Called by routes/oee.py and routes/town.py. For each asset under a scope this reads the state
timeline and the counts from the store, computes ISO 22400-2 OEE per period with
``analytics.oee`` and rolls the results up time-weighted with ``analytics.rollup`` (never an
average of ratios).

* Presses: states from ``state``/``state_reason``; counts from the ``count_total`` /
  ``count_good`` counters; ideal cycle time from the plant model.
* Kilns: ``state`` heating/soaking/cooling is running, fault a breakdown. Output is counted in
  cars: a tunnel kiln's ``car_push_count`` deltas, a shuttle kiln's completed firings (one
  load each). Quality is first-pass yield from the gradings posted for firings; a push is
  matched to the grading of the firing that was current when it left the kiln (car ids are a
  stable hash of the firing id). Gradings arriving later simply change the next answer.

Per-asset results go through the app's :class:`~api.services.oee_cache.OeeCache` when one is
given: keyed on the asset, the window, the bucket, the shift calendar's text and the settings;
dropped when the asset's gradings or recorded firings change (the metadata store says so);
kept a few seconds while the window may still receive data (docs/api.md, "The OEE cache").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analytics.oee import by_day, by_shift, compute_kiln_oee, compute_oee
from analytics.oee_model import CycleCounts, Gradings, KilnPushes, StateTimeline
from analytics.oee_result import OeeResult
from analytics.programme import Programme, ProgrammeError
from analytics.rollup import rollup
from analytics.shifts import ShiftCalendar
from api.metadata.store import MetadataStore
from api.services.firings import sync_firings
from api.services.oee_cache import OeeCache
from api.services.timeline import counters, state_changes
from api.settings import Settings
from core.config import ConfigError
from core.plant import Asset, Kiln, PlantModel
from ingest.contracts import Store

log = logging.getLogger(__name__)

DEFAULT_SHIFTS = """
timezone = "Asia/Shanghai"
[[shift]]
name = "A"
start = "08:00"
end = "16:00"
[[shift]]
name = "B"
start = "16:00"
end = "00:00"
[[shift]]
name = "C"
start = "00:00"
end = "08:00"
"""
BUCKETS = ("shift", "day", "window")
COUNTER_LOOKBEHIND_NS = 3600 * 10**9  # a counter sample before the window is the baseline


@dataclass(frozen=True, slots=True)
class Shifts:
    """A shift calendar and the SHA-256 of the TOML text it was parsed from (a cache key part:
    an edited calendar file gives new keys at once)."""

    calendar: ShiftCalendar
    fingerprint: str


def shift_calendar(path: str | None) -> Shifts:
    """The shift calendar from ``path`` or the built-in three-shift one (ConfigError if bad).

    The file is read on every call (so an edit shows at once); parsing is memoised on its text.
    """
    if not path:
        return _parse_shifts(DEFAULT_SHIFTS, "<built-in>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"expected UTF-8 text ({exc.reason})") from None
    return _parse_shifts(text, str(path))


@functools.lru_cache(maxsize=16)
def _parse_shifts(text: str, name: str) -> Shifts:
    return Shifts(ShiftCalendar.parse(text, name), hashlib.sha256(text.encode()).hexdigest())


def load_shifts(path: str | None) -> ShiftCalendar:
    """The shift calendar from ``path`` or the built-in three-shift one (ConfigError if bad)."""
    return shift_calendar(path).calendar


def car_id(firing_id: str) -> int:
    """A stable 63-bit integer id for a firing (the OEE core matches cars by integer)."""
    return int.from_bytes(hashlib.blake2b(firing_id.encode(), digest_size=8).digest()) >> 1


@dataclass
class Reasons:
    """Reason texts <-> the integer codes the OEE core works with (0 = no reason)."""

    codes: dict[str, int] = field(default_factory=dict)

    def code(self, text: str) -> int:
        if not text:
            return 0
        return self.codes.setdefault(text, len(self.codes) + 1)

    def text(self, code: int) -> str:
        for t, c in self.codes.items():
            if c == code:
                return t
        return "unspecified" if code == 0 else f"reason {code}"


def assets_under(plant: PlantModel, scope: str) -> list[Asset]:
    """Assets whose path is ``scope`` or below it; "" is the town (key enterprises only)."""
    if scope == "":
        keys = {e.id for e in plant.enterprises if e.key}
        return [a for a in plant.assets() if a.path.split("/", 1)[0] in keys]
    return [a for a in plant.assets() if a.path == scope or a.path.startswith(scope + "/")]


@dataclass(frozen=True, slots=True)
class AssetOee:
    """OEE of one asset. Reason codes in its results are its own: ``reasons[c - 1]`` is the
    text of code ``c`` (:func:`scope_oee` maps them onto the scope's codes). Immutable, so one
    cached instance may be shared by concurrent requests."""

    periods: tuple[OeeResult, ...]
    total: OeeResult
    problems: tuple[str, ...]
    reasons: tuple[str, ...]
    # A shuttle kiln whose firings around the window were not all complete before its end:
    # the firing's end (and so the cars out) is still to be learnt from telemetry.
    open_firing: bool = False


def _timeline(store: Store, asset: Asset, start: int, end: int, reasons: Reasons):
    ch = state_changes(store, asset.path, start, end, kiln=isinstance(asset, Kiln))
    codes = np.array([reasons.code(r) for r in ch.reason], dtype=np.int32)
    timeline = StateTimeline.from_names(ch.start_ns, ch.state, codes, None)
    return timeline, ch.dropped


def _kiln_output(
    store: Store, meta: MetadataStore, kiln: Kiln, start: int, end: int, settings: Settings
) -> tuple[KilnPushes, Gradings, float, bool]:
    # Firings are recorded as they are seen; look at the telemetry again for this window.
    firings = sync_firings(store, meta, kiln, start - 86400 * 10**9, end)
    g = meta.gradings(asset=kiln.path)
    gradings = Gradings(
        np.array([car_id(x.firing_id) for x in g], np.int64),
        np.array([x.good_count for x in g], np.float64),
        np.array([x.reject_count for x in g], np.float64),
        np.array([x.graded_ns for x in g], np.int64),
    )
    if kiln.kind == "tunnel":
        pushes = store.series(kiln.path, "car_push_count", start - COUNTER_LOOKBEHIND_NS, end)
        t = pushes.time_ns.astype(np.int64)
        v = pushes.values.astype(np.float64)
        d = np.diff(v) if v.size else v
        d = np.where(d < 0, v[1:], d) if v.size else d  # a counter reset counts in full
        t, d = t[1:], d
        keep = d > 0
        t, d = t[keep], d[keep]
        ids = store.series(kiln.path, "firing_id", start - 86400 * 10**9, end)
        pos = np.searchsorted(ids.time_ns, t, side="right") - 1
        cars = np.array(
            [car_id(str(ids.values[p])) if p >= 0 else -1 for p in pos.tolist()], np.int64
        )
        rate = kiln.nameplate_cars_per_hour or 1.0
        return KilnPushes(t, cars, d), gradings, rate, False
    done = sorted((f for f in firings if f.end_ns is not None), key=lambda f: f.end_ns)
    hours = []
    for f in done:
        try:
            p = Programme.from_segments(json.loads(f.programme_segments or "null") or [])
            hours.append(p.duration_s / 3600)
        except (ValueError, TypeError, ProgrammeError):
            pass
    rate = 1.0 / (float(np.mean(hours)) if hours else settings.shuttle_firing_hours)
    pushes = KilnPushes(
        np.array([f.end_ns for f in done], np.int64),
        np.array([car_id(f.firing_id) for f in done], np.int64),
        np.ones(len(done)),
    )
    open_firing = any(f.end_ns is None or f.end_ns >= end for f in firings)
    return pushes, gradings, rate, open_firing


def asset_oee(
    store: Store,
    meta: MetadataStore,
    asset: Asset,
    start: int,
    end: int,
    bucket: str,
    shifts: ShiftCalendar,
    settings: Settings,
) -> AssetOee:
    """OEE of one asset per period of ``bucket`` and over the whole window (uncached)."""
    problems: list[str] = []
    reasons = Reasons()
    timeline, dropped = _timeline(store, asset, start, end, reasons)
    if dropped:
        problems.append(f"{asset.path}: {dropped} state samples with unknown names ignored")
    if isinstance(asset, Kiln):
        pushes, gradings, rate, open_firing = _kiln_output(store, meta, asset, start, end, settings)

        def one(ws: int, we: int, period: str) -> OeeResult:
            return compute_kiln_oee(
                timeline,
                pushes,
                gradings,
                window=(ws, we),
                nameplate_per_hour=rate,
                shifts=shifts,
                scope=asset.path,
                period=period,
            )

        periods = []
        if bucket == "shift":
            for inst in shifts.instances(start, end):
                periods.append(one(max(start, inst.start_ns), min(end, inst.end_ns), inst.period))
        elif bucket == "day":
            by_date: dict[str, list[OeeResult]] = {}
            for inst in shifts.instances(start, end):
                r = one(max(start, inst.start_ns), min(end, inst.end_ns), inst.period)
                by_date.setdefault(inst.period.split("/")[0], []).append(r)
            periods = [rollup(v, scope=asset.path, period=k) for k, v in by_date.items()]
        total = one(start, end, "")
        return AssetOee(tuple(periods), total, tuple(problems), tuple(reasons.codes), open_firing)
    t, good, reject = counters(store, asset.path, start - COUNTER_LOOKBEHIND_NS, end)
    counts = CycleCounts.from_counters(t, good, reject)
    kw = dict(ideal_cycle_time_s=asset.ideal_cycle_time_s, scope=asset.path)
    if bucket == "shift":
        periods = by_shift(timeline, counts, window=(start, end), shifts=shifts, **kw)
    elif bucket == "day":
        periods = by_day(timeline, counts, window=(start, end), shifts=shifts, **kw)
    else:
        periods = []
    total = compute_oee(timeline, counts, window=(start, end), shifts=shifts, **kw)
    return AssetOee(tuple(periods), total, tuple(problems), tuple(reasons.codes))


def settings_fingerprint(settings: Settings) -> str:
    """SHA-256 over every setting: a per-asset result is keyed on all of them, so a knob the
    computation starts reading later cannot be forgotten in the key."""
    text = repr(sorted((k, repr(v)) for k, v in settings.model_dump().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def cached_asset_oee(
    cache: OeeCache[AssetOee] | None,
    store: Store,
    meta: MetadataStore,
    asset: Asset,
    start: int,
    end: int,
    bucket: str,
    shifts: Shifts,
    settings: Settings,
    settings_key: str | None = None,
) -> AssetOee:
    """:func:`asset_oee` through ``cache`` (None: computed every time)."""
    if cache is None:
        return asset_oee(store, meta, asset, start, end, bucket, shifts.calendar, settings)
    key = (
        asset,  # the plant model's whole definition (path, cycle time, nameplate, kind...)
        start,
        end,
        bucket,
        shifts.fingerprint,
        settings_key if settings_key is not None else settings_fingerprint(settings),
    )

    def compute(now_ns: int) -> tuple[AssetOee, bool]:
        r = asset_oee(store, meta, asset, start, end, bucket, shifts.calendar, settings)
        return r, cache.settled(end, now_ns) and not r.open_firing

    return cache.get_or_compute(asset.path, key, compute)


def _recode(r: OeeResult, codes: list[int]) -> OeeResult:
    """``r`` with its asset-local reason codes replaced by the scope's (``codes[c - 1]``)."""
    if not r.downtime_by_reason:
        return r
    by_reason = tuple((codes[c - 1] if c > 0 else c, ns) for c, ns in r.downtime_by_reason)
    return dataclasses.replace(r, downtime_by_reason=by_reason)


def scope_oee(
    store: Store,
    meta: MetadataStore,
    assets: Iterable[Asset],
    scope: str,
    start: int,
    end: int,
    bucket: str,
    shifts: Shifts,
    settings: Settings,
    cache: OeeCache[AssetOee] | None = None,
) -> tuple[list[OeeResult], OeeResult, list[str], Reasons]:
    """Per-period roll-ups and the window total of every asset in ``assets``.

    The caller has checked that whoever asked may see ``scope``; ``assets`` are under it.
    """
    reasons = Reasons()
    per: dict[str, list[OeeResult]] = {}
    totals: list[OeeResult] = []
    problems: list[str] = []
    settings_key = settings_fingerprint(settings) if cache is not None else None
    for a in assets:
        try:
            r = cached_asset_oee(
                cache, store, meta, a, start, end, bucket, shifts, settings, settings_key
            )
        except ValueError as exc:  # bad telemetry of one asset: say so, keep the others
            log.warning("OEE of %s failed: %s", a.path, exc)
            problems.append(f"{a.path}: {exc}")
            continue
        problems.extend(r.problems)
        codes = [reasons.code(text) for text in r.reasons]  # the scope's codes, in order
        totals.append(_recode(r.total, codes))
        for p in r.periods:
            per.setdefault(p.period, []).append(_recode(p, codes))
    periods = [rollup(v, scope=scope, period=k) for k, v in per.items()]
    periods.sort(key=lambda r: r.window_start_ns)
    total = rollup(totals, scope=scope, period="")
    return periods, total, problems, reasons
