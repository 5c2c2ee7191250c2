"""State timelines and counts of assets, read from the store for the OEE core and the charts.

Presses publish ``state`` (running | idle | setup | breakdown | starved | blocked |
planned_stop) and ``state_reason``; kilns publish ``state`` (idle | heating | soaking | cooling |
fault), mapped here onto machine states: a kiln that fires is running, a fault is a breakdown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ingest.contracts import Store

log = logging.getLogger(__name__)

KILN_STATES = {
    "heating": "running",
    "soaking": "running",
    "cooling": "running",
    "idle": "idle",
    "fault": "breakdown",
}
PRESS_STATES = ("running", "idle", "setup", "breakdown", "starved", "blocked", "planned_stop")
# How far before a window to look for the state that holds at its start.
LOOKBEHIND_NS = 24 * 3600 * 10**9


@dataclass(frozen=True, slots=True)
class Changes:
    """State changes: ``state[i]`` (machine-state name) holds from ``start_ns[i]``."""

    start_ns: np.ndarray
    state: list[str]
    reason: list[str]
    raw: list[str]  # the asset's own state name (kiln: heating...)
    dropped: int  # samples with a state name nobody knows


def state_changes(store: Store, asset: str, start_ns: int, end_ns: int, *, kiln: bool) -> Changes:
    """State changes of ``asset`` covering ``[start_ns, end_ns)`` (the state at ``start_ns``
    comes from up to a day earlier). Unknown state names are dropped and counted."""
    s = store.series(asset, "state", max(0, start_ns - LOOKBEHIND_NS), end_ns)
    r = store.series(asset, "state_reason", max(0, start_ns - LOOKBEHIND_NS), end_ns)
    reason_at = dict(zip(r.time_ns.tolist(), (str(v) for v in r.values.tolist()), strict=True))
    times: list[int] = []
    states: list[str] = []
    reasons: list[str] = []
    raws: list[str] = []
    dropped = 0
    for t, v in zip(s.time_ns.tolist(), s.values.tolist(), strict=True):
        raw = str(v)
        state = KILN_STATES.get(raw) if kiln else (raw if raw in PRESS_STATES else None)
        if state is None:
            dropped += 1
            continue
        reason = reason_at.get(t, "")
        if states and states[-1] == state and reasons[-1] == reason and raws[-1] == raw:
            continue
        if times and times[-1] == t:  # two changes at one instant: the later sample wins
            times.pop(), states.pop(), reasons.pop(), raws.pop()
        times.append(int(t))
        states.append(state)
        reasons.append(reason)
        raws.append(raw)
    if dropped:
        log.warning("%s: %d state samples with unknown names ignored", asset, dropped)
    # Keep only the change in force at start_ns and those after it.
    arr = np.asarray(times, dtype=np.int64)
    first = max(int(np.searchsorted(arr, start_ns, side="right")) - 1, 0)
    return Changes(arr[first:], states[first:], reasons[first:], raws[first:], dropped)


def counters(store: Store, asset: str, start_ns: int, end_ns: int) -> tuple[np.ndarray, ...]:
    """``(time_ns, good_total, reject_total)`` of a press's counters, on common samples."""
    total = store.series(asset, "count_total", start_ns, end_ns)
    good = store.series(asset, "count_good", start_ns, end_ns)
    t, it, ig = np.intersect1d(total.time_ns, good.time_ns, return_indices=True)
    tot = total.values.astype(np.float64)[it]
    g = good.values.astype(np.float64)[ig]
    return t.astype(np.int64), g, np.maximum(tot - g, 0.0)
