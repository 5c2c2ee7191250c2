"""Firings of a kiln, derived from its ``firing_id`` / ``state`` / ``programme`` series.

The kiln controller (or the simulator) publishes ``firing_id`` while a firing runs; a firing is
the span over which one id was seen. Derived firings are recorded in the metadata store
(:meth:`MetadataStore.upsert_firing`) so a firing stays listable after its telemetry is
downsampled away, and gradings can refer to it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from api.metadata.store import FiringRow, MetadataStore
from core.plant import Kiln
from ingest.contracts import Store

log = logging.getLogger(__name__)

IDLE_STATES = ("idle", "")


@dataclass(frozen=True, slots=True)
class DerivedFiring:
    firing_id: str
    start_ns: int
    end_ns: int | None  # None: still running
    programme: str
    programme_segments: str


def _text(values: np.ndarray) -> list[str]:
    return ["" if v is None else str(v) for v in values.tolist()]


def derive_firings(store: Store, kiln: Kiln, start_ns: int, end_ns: int) -> list[DerivedFiring]:
    """Firings seen in ``[start_ns, end_ns)`` of the kiln's telemetry, oldest first.

    Sources may report ``firing_id`` on every sample or only when it changes (OPC UA
    subscriptions): a firing starts at the first sample carrying its id and ends at the next
    sample carrying another id (or none), or at the first idle ``state`` at or after its last
    sample if that comes first (a controller that keeps the last id until the next firing).
    Both are looked for in the window only, so a firing whose end is not in it was in progress
    when the window ended (``end_ns`` None). What the kiln does after the window never decides
    a firing's end: otherwise the end of a past firing would change (or vanish) once the kiln
    starts its next one. A firing that began before the window is seen from the window's first
    sample: the caller must not take that for its start (:meth:`MetadataStore.upsert_firing`).
    """
    ids = store.series(kiln.path, "firing_id", start_ns, end_ns)
    if not len(ids):
        return []
    names = _text(ids.values)
    t = ids.time_ns.astype(np.int64).tolist()
    states = store.series(kiln.path, "state", start_ns, end_ns)
    is_idle = np.array([v in IDLE_STATES for v in _text(states.values)], dtype=bool)
    idle_t = states.time_ns.astype(np.int64)[is_idle]

    def idle_from(t_ns: int) -> int | None:
        k = int(np.searchsorted(idle_t, t_ns, side="left"))
        return int(idle_t[k]) if k < idle_t.size else None

    spans: dict[str, tuple[int, int | None]] = {}
    i = 0
    while i < len(names):
        j = i
        while j + 1 < len(names) and names[j + 1] == names[i]:
            j += 1
        if names[i]:
            begin = t[i]
            # Its own end, whichever shows first; none in the window: in progress at its end.
            next_id = t[j + 1] if j + 1 < len(names) else None
            ends = [x for x in (next_id, idle_from(t[j])) if x is not None]
            finish: int | None = min(ends) if ends else None
            if names[i] in spans:  # the same id again after a gap: one firing, widened
                first, last = spans[names[i]]
                begin = min(begin, first)
                finish = None if finish is None or last is None else max(finish, last)
            spans[names[i]] = (begin, finish)
        i = j + 1
    out = []
    for name, (first, last) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        programme, segments = _programme(store, kiln, first, last if last is not None else end_ns)
        out.append(DerivedFiring(name, first, last, programme, segments))
    return out


# Programme fields may arrive a little before or after the firing id (separate subscriptions).
PROGRAMME_SLACK_NS = 300 * 10**9


def _programme(store: Store, kiln: Kiln, start_ns: int, end_ns: int) -> tuple[str, str]:
    """The programme in force at the firing's start: the last value sent up to a few minutes
    after it started (change-only sources send it once, when the firing begins)."""
    lo, hi = start_ns - 3600 * 10**9, max(end_ns, start_ns) + 1

    def at_start(field: str) -> str:
        s = store.series(kiln.path, field, lo, hi)
        if not len(s):
            return ""
        k = int(np.searchsorted(s.time_ns, start_ns + PROGRAMME_SLACK_NS, side="right")) - 1
        return str(s.values[max(k, 0)])

    return at_start("programme"), at_start("programme_segments")


def sync_firings(
    store: Store, meta: MetadataStore, kiln: Kiln, start_ns: int, end_ns: int
) -> list[FiringRow]:
    """Derive the kiln's firings in the window, record them, and return the recorded ones
    overlapping it (merged with what earlier scans knew: a start recorded before is kept when
    this window began later, a finished firing stays finished)."""
    enterprise = kiln.path.split("/", 1)[0]
    for f in derive_firings(store, kiln, start_ns, end_ns):
        segments = f.programme_segments
        if segments:
            try:
                if not json.loads(segments):  # "[]": the kiln had no programme loaded
                    segments = ""
            except ValueError:
                log.warning(
                    "%s firing %s: programme_segments is not JSON; ignored", kiln.path, f.firing_id
                )
                segments = ""
        meta.upsert_firing(
            FiringRow(
                asset=kiln.path,
                firing_id=f.firing_id,
                enterprise=enterprise,
                programme=f.programme,
                programme_segments=segments,
                start_ns=f.start_ns,
                end_ns=f.end_ns,
                state="running" if f.end_ns is None else "complete",
                conformance_score=None,
                energy_kwh=None,
            )
        )
    return meta.firings(asset=kiln.path, start_ns=start_ns, end_ns=end_ns)
