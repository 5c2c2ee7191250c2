"""OEE to ISO 22400-2 from a machine-state timeline and counts: pure, vectorised NumPy.

Who calls this: the API's OEE service (states and counts loaded from the store) and
``kilnworks report oee`` (``analytics/oee_cli.py``). Nothing here does I/O or keeps state; the
same inputs always give the same :class:`~analytics.oee_result.OeeResult`, which is what makes
kiln OEE recompute correctly when a late grading arrives (call again with the new gradings).

How a window is accounted (``docs/analytics-oee.md`` has the long version):

1. the plan (shift calendar, or 24/7) splits the window into not planned, planned busy (PBT) and
   planned down (PDOT) stretches;
2. each state interval is classified: running -> APT, setup -> ASUT, idle/starved/blocked ->
   ADOT, breakdown -> ADET, planned_stop -> PDOT, no data -> shown apart; a run of consecutive
   unplanned stops shorter than ``microstop_s`` is a *minor stop*: it stays inside APT and
   shows up as a performance loss, as OEE practice (and oee.com's six big losses) wants;
3. timeline and plan are merged into elementary segments whose durations are summed per class
   (integer ns, exact);
4. counts made inside PBT are PQ/GQ/SQ; what is made outside PBT is reported, not counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np

from analytics.oee_model import (
    CycleCounts,
    Gradings,
    KilnPushes,
    MachineState,
    StateTimeline,
    encode_reasons,
    from_opc40001,
    state_code,
)
from analytics.oee_result import NS_PER_S, OeeResult, merge_reasons
from analytics.rollup import rollup
from analytics.shifts import (
    PLANNED_BUSY,
    PLANNED_DOWN,
    PlannedTime,
    PlanSource,
    ShiftCalendar,
    planned_step,
)

# Stops shorter than this are minor stops (performance loss). "Usually 5 minutes": OEE practice
# as taught by the OEE Foundation / OEE Academy (Arno Koch, "What are minor stops?"); the
# press simulator's short idles (0.5-4 min) fall under it. Configurable per call.
MICROSTOP_S = 300.0

# Accounting classes of a state interval (after microstop classification).
RUN, MICRO, SETUP, DOWN, DELAY, NO_DATA, PLANNED = range(7)
_N_CLASSES = 7

_CLASS_OF_STATE = np.empty(len(MachineState), dtype=np.int8)
_CLASS_OF_STATE[MachineState.RUNNING] = RUN
_CLASS_OF_STATE[MachineState.IDLE] = DOWN
_CLASS_OF_STATE[MachineState.STARVED] = DOWN
_CLASS_OF_STATE[MachineState.BLOCKED] = DOWN
_CLASS_OF_STATE[MachineState.BREAKDOWN] = DELAY
_CLASS_OF_STATE[MachineState.SETUP] = SETUP
_CLASS_OF_STATE[MachineState.PLANNED_STOP] = PLANNED
_CLASS_OF_STATE[MachineState.NO_DATA] = NO_DATA


@dataclass(frozen=True, slots=True, eq=False)
class PreparedTimeline:
    """A timeline classified once, so many windows (shifts, days) reuse the work.

    ``cls[i]`` is the accounting class of interval i; ``stop_start_ns``/``stop_is_micro`` the
    start of every unplanned-stop episode and whether it was a minor stop; ``restart_ns`` the
    times production resumed after a setup or a breakdown (start-up rejects follow them).
    """

    start_ns: np.ndarray
    cls: np.ndarray
    reason: np.ndarray
    end_ns: int | None
    stop_start_ns: np.ndarray
    stop_is_micro: np.ndarray
    restart_ns: np.ndarray


def prepare(timeline: StateTimeline, *, microstop_s: float = MICROSTOP_S) -> PreparedTimeline:
    """Classify every interval of ``timeline`` (see module docstring, step 2).

    A stop episode is a maximal run of consecutive idle/starved/blocked/breakdown intervals;
    its full length decides, even when a window cuts it, so a 10-minute breakdown across a
    shift change is an availability loss in both shifts, not two minor stops. The last
    interval of an open timeline (``end_ns`` None) is still going on: never a minor stop.
    """
    if not np.isfinite(microstop_s) or microstop_s < 0:
        raise ValueError(f"microstop_s: expected a number of seconds >= 0, got {microstop_s!r}")
    starts = timeline.start_ns
    n = starts.size
    cls = _CLASS_OF_STATE[timeline.state]
    ends = np.empty(n, np.int64)
    open_end = timeline.end_ns is None
    if n:
        ends[:-1] = starts[1:]
        ends[-1] = starts[-1] if open_end else timeline.end_ns
    is_stop = (cls == DOWN) | (cls == DELAY)
    prev = np.concatenate(([False], is_stop[:-1]))
    first = is_stop & ~prev
    stop_idx = np.flatnonzero(is_stop)
    ep_pos = np.flatnonzero(first[stop_idx])  # positions within stop_idx where episodes begin
    if stop_idx.size:
        ep_len_ns = np.add.reduceat(ends[stop_idx] - starts[stop_idx], ep_pos)  # exact int64
        micro = ep_len_ns < round(microstop_s * NS_PER_S)
        if open_end and is_stop[-1]:
            micro[-1] = False  # the stop is still going on
        # Broadcast each episode's verdict to its intervals.
        ep_id = np.cumsum(first[stop_idx]) - 1
        cls = cls.copy()
        cls[stop_idx[micro[ep_id]]] = MICRO
        ep_start = starts[stop_idx[ep_pos]]
    else:
        micro = np.zeros(0, bool)
        ep_start = np.zeros(0, np.int64)
    after_loss = np.concatenate(([False], (cls[:-1] == SETUP) | (cls[:-1] == DELAY)))
    restart = starts[(cls == RUN) & after_loss]
    return PreparedTimeline(starts, cls, timeline.reason, timeline.end_ns, ep_start, micro, restart)


def _plan_for(window: tuple[int, int], shifts: PlanSource | None) -> PlannedTime:
    ws, we = window
    if shifts is None:
        return planned_step(ws, we, [(ws, we)], [])
    return shifts.planned(ws, we)


def clip_plan(plan: PlannedTime, start_ns: int, end_ns: int) -> PlannedTime:
    """The part of ``plan`` inside ``[start_ns, end_ns)`` (which must lie within the plan)."""
    i0 = int(np.searchsorted(plan.edges, start_ns, side="right")) - 1
    i1 = int(np.searchsorted(plan.edges, end_ns, side="left"))
    edges = np.concatenate(([start_ns], plan.edges[i0 + 1 : i1], [end_ns])).astype(np.int64)
    return PlannedTime(edges, plan.level[i0:i1].copy())


def _check_window(window: tuple[int, int]) -> tuple[int, int]:
    try:
        ws, we = (int(window[0]), int(window[1]))
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"window: expected (start_ns, end_ns), got {window!r}") from None
    if we < ws:
        raise ValueError(f"window: end {we} is before start {ws}")
    return ws, we


def _level_at(plan: PlannedTime, t: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(plan.edges, t, side="right") - 1
    idx = np.clip(idx, 0, plan.level.size - 1)
    return plan.level[idx]


@dataclass(frozen=True, slots=True)
class _Times:
    elements: dict[str, int]
    reasons: tuple[tuple[int, int], ...]
    reasoned_ns: int
    edges: np.ndarray  # elementary segments of the window...
    busy: np.ndarray  # ...and whether each is planned busy time (where counts count)

    def busy_mask(self, t: np.ndarray) -> np.ndarray:
        """Which events at times ``t`` (inside the window) fall in planned busy time."""
        seg = np.searchsorted(self.edges, t, side="right") - 1
        return self.busy[np.clip(seg, 0, self.busy.size - 1)]

    def busy_sums(self, t: np.ndarray, *values: np.ndarray) -> list[float]:
        """Sums of each ``values`` array over the events at sorted times ``t`` that fall in
        planned busy time.

        Adjacent segments with the same busy flag are merged first, so the cost is one binary
        search per busy/not-busy *change* plus one pass over the values (np.add.reduceat),
        rather than one binary search per event: 10M cycle events cost about one read.
        """
        if t.size == 0 or not self.busy.any():
            return [0.0 for _ in values]
        if self.busy.all():
            return [float(v.sum()) for v in values]
        change = np.concatenate(([True], self.busy[1:] != self.busy[:-1]))
        run_busy = self.busy[change]
        b = np.searchsorted(t, self.edges[:-1][change], side="left")
        hi = np.append(b[1:], t.size)
        filled = hi > b
        out = []
        for v in values:
            sums = np.add.reduceat(v, b[filled])
            out.append(float(sums[run_busy[filled]].sum()))
        return out


def _segments(
    prep: PreparedTimeline, ws: int, we: int, plan: PlannedTime
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``[ws, we)`` at every state change and plan edge.

    Returns the segments' left edges and, for each, the index of the timeline interval in
    force (-1: no data). Built by construction, not by sorting: the timeline's own changes
    are already sorted, and the few plan edges are inserted where a binary search puts them.
    """
    starts = prep.start_ns
    lo = int(np.searchsorted(starts, ws, side="right")) - 1  # interval in force at ws, or -1
    hi = int(np.searchsorted(starts, we, side="left"))
    left = np.concatenate(([ws], starts[lo + 1 : hi])).astype(np.int64)
    k = np.concatenate(([lo], np.arange(lo + 1, hi))).astype(np.int64)
    end = prep.end_ns
    if end is not None and end < we:
        if end <= ws:
            k[:] = -1
        elif left[-1] == end:  # zero-length last interval
            k[-1] = -1
        else:  # every change is at or before the end of a closed timeline
            left = np.append(left, end)
            k = np.append(k, -1)
    extra = plan.edges[1:-1]  # plan.edges spans [ws, we]; inner edges cut segments
    if extra.size:
        pos = np.searchsorted(left, extra, side="left")
        dup = (pos < left.size) & (left[np.minimum(pos, left.size - 1)] == extra)
        extra, pos = extra[~dup], pos[~dup]
        left = np.insert(left, pos, extra)
        k = np.insert(k, pos, k[pos - 1])  # a cut inherits the state in force before it
    return left, k


def _times(prep: PreparedTimeline, ws: int, we: int, plan: PlannedTime) -> _Times:
    """Sum the time elements of ``[ws, we)`` (step 3 of the module docstring)."""
    left, k = _segments(prep, ws, we, plan)
    edges = np.append(left, we)
    dur = np.diff(edges)
    known = k >= 0
    k_safe = np.where(known, k, 0)
    if prep.start_ns.size:
        cls = np.where(known, prep.cls[k_safe], NO_DATA).astype(np.int8)
        reason = np.where(known, prep.reason[k_safe], 0)
    else:
        cls = np.full(left.size, NO_DATA, np.int8)
        reason = np.zeros(left.size, np.int32)
    if plan.level.size == 1:  # one plan level over the whole window (24/7): no search
        level = np.full(left.size, plan.level[0], np.int8)
    else:
        level = _level_at(plan, left)
    busy = (level == PLANNED_BUSY) & (cls != PLANNED)
    # Sum durations per (plan level, class) pair: a stable sort of an int8 code is a radix
    # sort in NumPy, and np.add.reduceat over int64 keeps the sums exact to the nanosecond
    # (np.bincount's float weights would round beyond ~104 days of nanoseconds).
    code = (level.astype(np.int8) * 8 + cls).astype(np.int8)
    order = np.argsort(code, kind="stable")
    sorted_code = code[order]
    first = np.flatnonzero(np.concatenate(([True], sorted_code[1:] != sorted_code[:-1])))
    table = np.zeros((3, 8), dtype=np.int64)
    if dur.size:
        sums = np.add.reduceat(dur[order], first)
        table.reshape(-1)[sorted_code[first]] = sums
    in_busy = table[PLANNED_BUSY]
    elements = {
        "calendar_ns": we - ws,
        "pot_ns": int(table[PLANNED_BUSY].sum() + table[PLANNED_DOWN].sum()),
        "pdot_ns": int(table[PLANNED_DOWN].sum() + in_busy[PLANNED]),
        "pbt_ns": int(in_busy.sum() - in_busy[PLANNED]),
        "apt_ns": int(in_busy[RUN] + in_busy[MICRO]),
        "microstop_ns": int(in_busy[MICRO]),
        "asut_ns": int(in_busy[SETUP]),
        "adot_ns": int(in_busy[DOWN]),
        "adet_ns": int(in_busy[DELAY]),
        "no_data_ns": int(in_busy[NO_DATA]),
    }
    sel = busy & ((cls == SETUP) | (cls == DOWN) | (cls == DELAY)) & (reason != 0)
    reasons: tuple[tuple[int, int], ...] = ()
    reasoned = 0
    if np.any(sel):
        r, d = reason[sel], dur[sel]
        order = np.argsort(r, kind="stable")
        r, d = r[order], d[order]
        first = np.flatnonzero(np.concatenate(([True], r[1:] != r[:-1])))
        sums = np.add.reduceat(d, first)
        reasons = merge_reasons([dict(zip(r[first].tolist(), sums.tolist(), strict=True))])
        reasoned = int(sums.sum())
    # Stop episodes that start inside planned busy time of this window.
    e0, e1 = np.searchsorted(prep.stop_start_ns, [ws, we], side="left")
    ep_t = prep.stop_start_ns[e0:e1]
    ep_busy = _level_at(plan, ep_t) == PLANNED_BUSY
    micro = prep.stop_is_micro[e0:e1]
    elements["microstop_count"] = int(np.count_nonzero(ep_busy & micro))
    elements["stop_count"] = int(np.count_nonzero(ep_busy & ~micro))
    return _Times(elements, reasons, reasoned, edges, busy)


def _empty(scope: str, period: str, ws: int, we: int, ideal: bool, unit: str) -> OeeResult:
    return OeeResult(scope, period, ws, we, ideal_known=ideal, unit=unit)


def _ideal(ideal_cycle_time_s: float | None) -> float | None:
    if ideal_cycle_time_s is None:
        return None
    value = float(ideal_cycle_time_s)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"ideal cycle time: expected seconds > 0, got {ideal_cycle_time_s!r}")
    return value


def _startup(startup_s: float) -> float:
    value = float(startup_s)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"startup_s: expected seconds >= 0, got {startup_s!r}")
    return value


def _compute_prepared(
    prep: PreparedTimeline,
    counts: CycleCounts,
    ws: int,
    we: int,
    plan: PlannedTime,
    ideal: float | None,
    startup_s: float,
    scope: str,
    period: str,
) -> OeeResult:
    if we == ws:
        return _empty(scope, period, ws, we, ideal is not None, "piece")
    times = _times(prep, ws, we, plan)
    c0, c1 = np.searchsorted(counts.time_ns, [ws, we], side="left")
    t = counts.time_ns[c0:c1]
    good = counts.good[c0:c1]
    reject = counts.reject[c0:c1]
    g, r = times.busy_sums(t, good, reject)
    startup = 0.0
    if startup_s > 0 and prep.restart_ns.size and r > 0:
        has_reject = reject > 0  # rejects are few: a per-event search over them is cheap
        tr, rr = t[has_reject], reject[has_reject]
        ok = times.busy_mask(tr)
        tr, rr = tr[ok], rr[ok]
        j = np.searchsorted(prep.restart_ns, tr, side="right") - 1
        since = tr - prep.restart_ns[np.maximum(j, 0)]
        in_startup = (j >= 0) & (since < int(startup_s * NS_PER_S))
        startup = float(rr[in_startup].sum())
    outside = float(good.sum() + reject.sum()) - (g + r)
    cycle = ideal if ideal is not None else 0.0
    return OeeResult(
        scope=scope,
        period=period,
        window_start_ns=ws,
        window_end_ns=we,
        **times.elements,
        produced=g + r,
        good=g,
        rejected=r,
        startup_rejected=startup,
        ideal_produced_s=cycle * (g + r),
        ideal_graded_s=cycle * (g + r),
        ideal_good_s=cycle * g,
        ideal_startup_rejected_s=cycle * startup,
        outside_planned_count=outside,
        produced_graded=g + r,
        reasoned_down_ns=times.reasoned_ns,
        downtime_by_reason=times.reasons,
        ideal_known=ideal is not None,
    )


def compute_oee(
    timeline: StateTimeline,
    counts: CycleCounts,
    *,
    window: tuple[int, int],
    ideal_cycle_time_s: float | None,
    shifts: PlanSource | None = None,
    microstop_s: float = MICROSTOP_S,
    startup_s: float = 0.0,
    scope: str = "",
    period: str = "",
) -> OeeResult:
    """OEE of one asset over ``window = (start_ns, end_ns)``.

    ``shifts`` None means planned 24/7 (POT = the window). ``ideal_cycle_time_s`` is ISO
    22400's planned run time per item (the press's nameplate cycle); None leaves performance,
    OEE and TEEP undefined (with a reason) but still gives availability and quality.
    ``startup_s`` > 0 counts rejects made within that many seconds after production resumes
    from a setup or breakdown as start-up rejects (the sixth big loss).

    Raises ValueError for a reversed window or a bad parameter. Ratios that cannot be
    computed (zero planned time, nothing made) are None, never a ZeroDivisionError.
    """
    ws, we = _check_window(window)
    ideal = _ideal(ideal_cycle_time_s)
    startup_s = _startup(startup_s)
    prep = prepare(timeline, microstop_s=microstop_s)
    return _compute_prepared(
        prep, counts, ws, we, _plan_for((ws, we), shifts), ideal, startup_s, scope, period
    )


def by_shift(
    timeline: StateTimeline,
    counts: CycleCounts,
    *,
    window: tuple[int, int],
    shifts: ShiftCalendar,
    ideal_cycle_time_s: float | None,
    microstop_s: float = MICROSTOP_S,
    startup_s: float = 0.0,
    scope: str = "",
) -> list[OeeResult]:
    """One result per shift instance overlapping ``window`` (clipped to it), in time order.

    ``period`` of each is ``YYYY-MM-DD/<shift name>`` (local date the shift starts);
    ``calendar_ns`` is the shift's span, so TEEP of a shift is not meaningful: use
    :func:`by_day` for TEEP.
    """
    ws, we = _check_window(window)
    ideal = _ideal(ideal_cycle_time_s)
    startup_s = _startup(startup_s)
    prep = prepare(timeline, microstop_s=microstop_s)
    out = []
    whole = shifts.planned(ws, we)  # expand the calendar once, clip it per shift
    for inst in shifts.instances(ws, we):  # one iteration per shift, not per event
        s, e = max(ws, inst.start_ns), min(we, inst.end_ns)
        plan = clip_plan(whole, s, e)
        out.append(
            _compute_prepared(prep, counts, s, e, plan, ideal, startup_s, scope, inst.period)
        )
    return out


def by_day(
    timeline: StateTimeline,
    counts: CycleCounts,
    *,
    window: tuple[int, int],
    shifts: ShiftCalendar,
    ideal_cycle_time_s: float | None,
    microstop_s: float = MICROSTOP_S,
    startup_s: float = 0.0,
    scope: str = "",
) -> list[OeeResult]:
    """Production days: the roll-up of each local date's shifts (a night shift belongs to the
    day it starts). ``calendar_ns`` is the local day's length (24 h, 23/25 h on DST changes,
    clipped to the window) so a day's TEEP is fully productive time over all time that day.
    """
    shift_results = by_shift(
        timeline,
        counts,
        window=window,
        shifts=shifts,
        ideal_cycle_time_s=ideal_cycle_time_s,
        microstop_s=microstop_s,
        startup_s=startup_s,
        scope=scope,
    )
    ws, we = _check_window(window)
    days: dict[str, list[OeeResult]] = {}
    for r in shift_results:
        days.setdefault(r.period.split("/")[0], []).append(r)
    out = []
    for day, parts in days.items():
        d = dt.date.fromisoformat(day)
        start = _local_midnight_ns(d, shifts)
        end = _local_midnight_ns(d + dt.timedelta(days=1), shifts)
        s, e = max(ws, start), min(we, end)
        total = rollup(parts, scope=scope, period=day)
        out.append(
            dataclasses.replace(
                total, window_start_ns=s, window_end_ns=e, calendar_ns=max(e - s, 0)
            )
        )
    return out


def _local_midnight_ns(day: dt.date, shifts: ShiftCalendar) -> int:
    moment = dt.datetime.combine(day, dt.time(), shifts.tz)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (moment - epoch) // dt.timedelta(microseconds=1) * 1000


def _latest_gradings(gradings: Gradings, as_of_ns: int | None) -> Gradings:
    keep = slice(None) if as_of_ns is None else gradings.graded_ns <= as_of_ns
    ids, good, rej, at = (
        gradings.car_id[keep],
        gradings.good[keep],
        gradings.reject[keep],
        gradings.graded_ns[keep],
    )
    order = np.lexsort((at, ids))
    ids, good, rej, at = ids[order], good[order], rej[order], at[order]
    last = np.concatenate((ids[1:] != ids[:-1], [True])) if ids.size else np.zeros(0, bool)
    return Gradings(ids[last], good[last], rej[last], at[last])


def compute_kiln_oee(
    timeline: StateTimeline | None,
    pushes: KilnPushes,
    gradings: Gradings,
    *,
    window: tuple[int, int],
    nameplate_per_hour: float,
    shifts: PlanSource | None = None,
    microstop_s: float = 0.0,
    as_of_ns: int | None = None,
    unit: str = "car",
    scope: str = "",
    period: str = "",
) -> OeeResult:
    """Rate-based OEE of a continuous (tunnel) kiln.

    Performance is the quantity pushed out (cars, or tonnes when ``quantity`` holds tonnes and
    ``unit="t"``) against ``nameplate_per_hour``; quality is first-pass yield, good pieces over
    graded pieces, from the gradings known at ``as_of_ns`` (None: all). Gradings arrive hours
    after the car leaves the kiln: this function is pure, so calling it again when one arrives
    *is* the recomputation. Until every car in the window is graded, quality is provisional
    (``graded_share`` < 1) and ungraded cars are assumed to grade like the graded ones.

    ``timeline`` None means the kiln fired throughout (a tunnel kiln without a state signal):
    every loss then shows up as rate (performance) loss. ``microstop_s`` defaults to 0: a late
    push is a rate loss already. Raises ValueError for a bad window or nameplate.
    """
    ws, we = _check_window(window)
    rate = float(nameplate_per_hour)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"nameplate_per_hour: expected a rate > 0, got {nameplate_per_hour!r}")
    cycle = 3600.0 / rate
    if timeline is None:
        timeline = StateTimeline(
            np.array([ws], np.int64), np.array([MachineState.RUNNING], np.int8), None, we
        )
    prep = prepare(timeline, microstop_s=microstop_s)
    if we == ws:
        return _empty(scope, period, ws, we, True, unit)
    plan = _plan_for((ws, we), shifts)
    times = _times(prep, ws, we, plan)
    p0, p1 = np.searchsorted(pushes.time_ns, [ws, we], side="left")
    t = pushes.time_ns[p0:p1]
    ok = times.busy_mask(t)  # a few dozen pushes a day
    car = pushes.car_id[p0:p1][ok]
    qty = pushes.quantity[p0:p1][ok]
    produced = float(qty.sum())
    latest = _latest_gradings(gradings, as_of_ns)
    pos = np.searchsorted(latest.car_id, car)
    pos_c = np.minimum(pos, max(latest.car_id.size - 1, 0))
    matched = (
        (pos < latest.car_id.size) & (latest.car_id[pos_c] == car)
        if latest.car_id.size
        else np.zeros(car.size, bool)
    )
    pieces_good = latest.good[pos_c][matched] if latest.car_id.size else np.zeros(0)
    pieces_all = pieces_good + (latest.reject[pos_c][matched] if latest.car_id.size else 0.0)
    graded_mask = matched.copy()
    if latest.car_id.size:
        graded_mask[matched] = pieces_all > 0  # a grading of zero pieces says nothing
    graded_qty = float(qty[graded_mask].sum())
    total_pieces = float(pieces_all.sum())
    fpy = float(pieces_good.sum()) / total_pieces if total_pieces > 0 else None
    good = graded_qty * fpy if fpy is not None else 0.0
    notes = []
    if produced > graded_qty:
        notes.append(
            f"quality provisional: {graded_qty:g} of {produced:g} ({unit}) graded"
            + (f" as of {as_of_ns}" if as_of_ns is not None else "")
        )
    outside = float(pushes.quantity[p0:p1].sum()) - produced
    return OeeResult(
        scope=scope,
        period=period,
        window_start_ns=ws,
        window_end_ns=we,
        **times.elements,
        produced=produced,
        good=good,
        rejected=graded_qty - good,
        ideal_produced_s=cycle * produced,
        ideal_graded_s=cycle * graded_qty,
        ideal_good_s=cycle * good,
        outside_planned_count=outside,
        produced_graded=graded_qty,
        reasoned_down_ns=times.reasoned_ns,
        downtime_by_reason=times.reasons,
        unit=unit,
        notes=tuple(notes),
    )


__all__ = [
    "CycleCounts", "Gradings", "KilnPushes", "MachineState", "OeeResult", "PreparedTimeline",
    "StateTimeline", "by_day", "by_shift", "compute_kiln_oee", "compute_oee", "encode_reasons",
    "from_opc40001",
    "prepare", "state_code",
]  # fmt: skip
