"""From stored series to OEE inputs: the seam the API's OEE service uses.

The agent stores a press's state changes as the string field ``state`` (with the optional
``state_reason`` at the same source time) and its cycles as ``cycle_result`` (``good`` /
``reject``) or the counters ``count_total`` / ``count_good`` (``examples/agent/*.toml``). A store
returns each as ``(time_ns, values)`` arrays. These functions turn them into a
:class:`~analytics.oee_model.StateTimeline` and :class:`~analytics.oee_model.CycleCounts`.

Bad values never stop the computation: an unknown state or result is left out, counted per
kind in ``skipped`` (the service logs it and shows it next to the result) and everything else
is used. Rows out of order are sorted; two states at the same time keep the later row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.oee_model import (
    CycleCounts,
    KilnPushes,
    StateTimeline,
    encode_reasons,
    parse_result,
    state_code,
)


@dataclass(frozen=True, slots=True)
class SeriesTimeline:
    """A timeline built from stored series, the names of its reason codes and what was left
    out (``{"unknown state 'runing'": 3}``)."""

    timeline: StateTimeline
    reason_names: dict[int, str]
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeriesCounts:
    counts: CycleCounts
    skipped: dict[str, int] = field(default_factory=dict)


def _bump(skipped: dict[str, int], key: str) -> None:
    skipped[key] = skipped.get(key, 0) + 1


def timeline_from_series(
    time_ns: np.ndarray | Sequence[int],
    states: Sequence[str],
    *,
    reason_time_ns: np.ndarray | Sequence[int] | None = None,
    reasons: Sequence[str] | None = None,
    end_ns: int | None = None,
) -> SeriesTimeline:
    """Build the timeline from the ``state`` series (and ``state_reason``, matched by exact
    source time, since the press sends both in one message). ``end_ns``: when the data is
    known to end (None: the last state still holds, e.g. for a live dashboard).
    """
    t = np.asarray(time_ns, np.int64)
    if t.shape != (len(states),):
        raise ValueError(f"state series: {t.size} times for {len(states)} values")
    skipped: dict[str, int] = {}
    codes = np.empty(t.size, np.int8)
    ok = np.ones(t.size, bool)
    # One Python step per *state change* (a few thousand a day per press), never per sample.
    memo: dict[str, int] = {}
    for i, name in enumerate(states):
        code = memo.get(name)
        if code is None:
            try:
                code = memo[name] = int(state_code(str(name)))
            except ValueError:
                ok[i] = False
                _bump(skipped, f"unknown state {str(name)[:40]!r}")
                continue
        codes[i] = code
    by_time: dict[int, str] = {}
    if reasons is not None:
        rt = np.asarray(reason_time_ns, np.int64)
        if rt.shape != (len(reasons),):
            raise ValueError(f"reason series: {rt.size} times for {len(reasons)} values")
        by_time = {int(a): str(b) for a, b in zip(rt.tolist(), reasons, strict=True) if b}
    t, codes = t[ok], codes[ok]
    reason_text = [by_time.get(x, "") for x in t.tolist()] if by_time else [""] * t.size
    reason_codes, names = encode_reasons(reason_text)
    order = np.argsort(t, kind="stable")
    t, codes, reason_codes = t[order], codes[order], reason_codes[order]
    keep = np.concatenate((t[1:] != t[:-1], [True])) if t.size else np.zeros(0, bool)
    if t.size and not keep.all():
        skipped["state repeated at the same time (later row kept)"] = int(np.sum(~keep))
    t, codes, reason_codes = t[keep], codes[keep], reason_codes[keep]
    if end_ns is not None and t.size and end_ns < t[-1]:
        raise ValueError(f"end_ns {end_ns} is before the last state change {t[-1]}")
    return SeriesTimeline(StateTimeline(t, codes, reason_codes, end_ns), names, skipped)


def counts_from_results(
    time_ns: np.ndarray | Sequence[int], results: Sequence[str | bool]
) -> SeriesCounts:
    """From the ``cycle_result`` series: one cycle per value, ``good``/``reject`` (and the
    usual synonyms: ok/ng, pass/fail, scrap)."""
    t = np.asarray(time_ns, np.int64)
    if t.shape != (len(results),):
        raise ValueError(f"cycle series: {t.size} times for {len(results)} values")
    skipped: dict[str, int] = {}
    good = np.zeros(t.size)
    ok = np.ones(t.size, bool)
    memo: dict[object, bool] = {}
    for i, value in enumerate(results):  # parsing strings needs Python; the maths does not
        verdict = memo.get(value)
        if verdict is None:
            try:
                verdict = memo[value] = parse_result(value)
            except ValueError:
                ok[i] = False
                _bump(skipped, f"unknown cycle result {str(value)[:40]!r}")
                continue
        good[i] = verdict
    order = np.argsort(t[ok], kind="stable")
    g = good[ok][order]
    return SeriesCounts(CycleCounts(t[ok][order], g, 1.0 - g), skipped)


def counts_from_counters(
    time_ns: np.ndarray | Sequence[int],
    count_total: np.ndarray | Sequence[float],
    count_good: np.ndarray | Sequence[float],
) -> SeriesCounts:
    """From the PLC counters ``count_total`` and ``count_good`` sampled at the same times.
    Rejects are total - good; a counter that goes down was reset (see
    :meth:`CycleCounts.from_counters`). Samples with a NaN, a negative value or good > total
    are left out and counted."""
    t = np.asarray(time_ns, np.int64)
    total = np.asarray(count_total, np.float64)
    good = np.asarray(count_good, np.float64)
    if not (t.shape == total.shape == good.shape):
        raise ValueError("counter series: times, count_total and count_good differ in length")
    bad = ~np.isfinite(total) | ~np.isfinite(good) | (good < 0) | (good > total)
    skipped = {"bad counter sample": int(bad.sum())} if bad.any() else {}
    order = np.argsort(t[~bad], kind="stable")
    t, total, good = t[~bad][order], total[~bad][order], good[~bad][order]
    return SeriesCounts(CycleCounts.from_counters(t, good, total - good), skipped)


def pushes_from_counter(
    time_ns: np.ndarray | Sequence[int], car_push_count: np.ndarray | Sequence[float]
) -> tuple[KilnPushes, dict[str, int]]:
    """Tunnel-kiln pushes from the ``car_push_count`` counter the kiln publishes.

    Each increment is a car leaving the kiln; when the counter moved by n between two samples
    the n cars are dated at the later sample. A car's id is its counter value, so gradings
    name cars by push number. After a counter reset the ids continue above the highest value
    seen (so two cars in one series never share an id); the first sample is the baseline.
    NaN or negative samples are left out and counted.
    """
    t = np.asarray(time_ns, np.int64)
    v = np.asarray(car_push_count, np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError("car_push_count series: times and values differ in length")
    bad = ~np.isfinite(v) | (v < 0)
    skipped = {"bad car_push_count sample": int(bad.sum())} if bad.any() else {}
    order = np.argsort(t[~bad], kind="stable")
    t, v = t[~bad][order], v[~bad][order].astype(np.int64)
    if v.size < 2:
        empty = np.zeros(0, np.int64)
        return KilnPushes(empty, empty, np.zeros(0)), skipped
    step = np.diff(v)
    reset = step < 0
    # Offset each segment after a reset by the highest id issued before it.
    offset = np.concatenate(([0], np.cumsum(np.where(reset, v[:-1], 0))))
    ids_end = v + offset  # id of the last car at each sample
    made = np.where(reset, v[1:], step)
    times = np.repeat(t[1:], made)
    # ids: ids_end[i+1] - made[i] + 1 ... ids_end[i+1] for each sample with made > 0
    last = np.repeat(ids_end[1:], made)
    within = np.arange(times.size) - np.repeat(np.cumsum(made) - made, made)
    car = last - np.repeat(made, made) + 1 + within
    return KilnPushes(times, car, np.ones(times.size)), skipped


__all__ = [
    "SeriesCounts", "SeriesTimeline", "counts_from_counters", "counts_from_results",
    "pushes_from_counter", "timeline_from_series",
]  # fmt: skip
