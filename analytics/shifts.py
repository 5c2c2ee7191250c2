"""Shift calendars: when an asset is planned to work, in the plant's local time.

A calendar is a small TOML file (``examples/oee/shifts.toml``)::

    timezone = "Asia/Shanghai"          # IANA name; shifts are local wall-clock times
    holidays = ["2026-10-01"]           # local dates with no shift at all (optional)

    [[shift]]
    name = "A"
    start = "08:00"
    end = "16:00"                       # end <= start: the shift runs past midnight
    days = ["mon", "tue", "wed", "thu", "fri", "sat"]   # day the shift starts; default all
    breaks = [{ start = "12:00", end = "12:30" }]       # planned downtime inside the shift

    [[planned_downtime]]                # one-off planned stops (maintenance, trials)
    start = "2026-11-27T08:00"          # local time
    end = "2026-11-27T12:00"
    reason = "die change trial"

In ISO 22400-2 terms a shift is planned operation time (POT); breaks and planned downtime are
planned down time (PDOT); POT - PDOT is planned busy time (PBT), the denominator of availability.
Without a calendar the OEE core treats the whole window as POT (24/7 operation, as kilns run).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from core.config import ConfigError, Table, load_toml, parse_toml

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS_PER_US = 1000


def _to_ns(moment: dt.datetime) -> int:
    # Exact integer arithmetic: timestamp() goes through a float.
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * _NS_PER_US


def _from_ns(ns: int, tz: ZoneInfo) -> dt.datetime:
    return (_EPOCH + dt.timedelta(microseconds=ns // _NS_PER_US)).astimezone(tz)


@dataclass(frozen=True, slots=True)
class _Clock:
    """A wall-clock time of day; ``24:00`` is allowed as an end."""

    seconds: int

    @classmethod
    def parse(cls, table: Table, key: str) -> _Clock:
        text = table.str(key)
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            h, m = int(parts[0]), int(parts[1])
            s = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise table.error(key, f"expected a time HH:MM, got {text!r}") from None
        if not (0 <= m < 60 and 0 <= s < 60 and (0 <= h < 24 or (h == 24 and m == s == 0))):
            raise table.error(key, f"expected a time between 00:00 and 24:00, got {text!r}")
        return cls(h * 3600 + m * 60 + s)


@dataclass(frozen=True, slots=True)
class _ShiftPattern:
    name: str
    start: _Clock
    length_s: int
    days: frozenset[int]
    breaks: tuple[tuple[int, int], ...]  # offsets from shift start in seconds


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One shift on one local date: planned operation from ``start_ns`` to ``end_ns``, with
    planned breaks ``breaks`` (UTC ns intervals inside the shift)."""

    name: str
    date: dt.date
    start_ns: int
    end_ns: int
    breaks: tuple[tuple[int, int], ...]

    @property
    def period(self) -> str:
        """Label used in results: ``2026-11-25/A``."""
        return f"{self.date.isoformat()}/{self.name}"


@dataclass(frozen=True, slots=True)
class PlannedTime:
    """The plan over a window as a step function: ``level[i]`` holds on
    ``[edges[i], edges[i + 1])``; 0 = not planned, 1 = planned busy (PBT),
    2 = planned but planned downtime (PDOT). ``edges`` spans the whole window."""

    edges: np.ndarray
    level: np.ndarray


NOT_PLANNED, PLANNED_BUSY, PLANNED_DOWN = 0, 1, 2


class PlanSource(Protocol):
    """What the OEE core asks of a calendar: the plan over a window. :class:`ShiftCalendar`
    implements it; so can a plan kept elsewhere (a metadata store, a test's fixed intervals).
    Called once per computed window; must not do I/O in the hot path (load beforehand)."""

    def planned(self, start_ns: int, end_ns: int) -> PlannedTime: ...


def planned_step(
    start_ns: int,
    end_ns: int,
    pot: list[tuple[int, int]],
    pdot: list[tuple[int, int]],
) -> PlannedTime:
    """Step function of the plan from POT and PDOT interval lists (any order, may overlap).

    Called by :meth:`ShiftCalendar.planned` and by the OEE core when there is no calendar
    (``pot = [(start, end)]``). PDOT outside POT has no effect.
    """
    edges = {start_ns, end_ns}
    for s, e in (*pot, *pdot):
        edges.update((min(max(s, start_ns), end_ns), min(max(e, start_ns), end_ns)))
    grid = np.array(sorted(edges), dtype=np.int64)
    left = grid[:-1]

    def covered(intervals: list[tuple[int, int]]) -> np.ndarray:
        if not intervals:
            return np.zeros(left.size, dtype=bool)
        iv = np.array(sorted(intervals), dtype=np.int64)
        # Merge overlapping intervals (running maximum of the ends), then one binary search
        # per cut point: a multi-year calendar stays O((cuts + intervals) log intervals).
        reach = np.maximum.accumulate(iv[:, 1])
        new = np.concatenate(([True], iv[1:, 0] > reach[:-1]))
        g_start = iv[new, 0]
        g_end = reach[np.concatenate((np.flatnonzero(new)[1:] - 1, [iv.shape[0] - 1]))]
        j = np.searchsorted(g_start, left, side="right") - 1
        return (j >= 0) & (left < g_end[np.maximum(j, 0)])

    in_pot = covered(pot)
    level = np.where(in_pot, np.where(covered(pdot), PLANNED_DOWN, PLANNED_BUSY), NOT_PLANNED)
    return PlannedTime(grid, level.astype(np.int8))


class ShiftCalendar:
    """Shift patterns in a local timezone, plus holidays and one-off planned downtime.

    Build with :meth:`load` (a file) or :meth:`parse` (text): both raise
    :class:`core.config.ConfigError` naming the file, the key and what was expected, so a
    broken calendar fails at load time rather than producing a silently wrong OEE.
    """

    def __init__(
        self,
        tz: ZoneInfo,
        patterns: tuple[_ShiftPattern, ...],
        holidays: frozenset[dt.date] = frozenset(),
        planned_downtime: tuple[tuple[int, int, str], ...] = (),
        source: str = "",
    ) -> None:
        self.tz = tz
        self.patterns = patterns
        self.holidays = holidays
        self.planned_downtime = planned_downtime
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> ShiftCalendar:
        return cls._from_table(load_toml(path))

    @classmethod
    def parse(cls, text: str, name: str = "<shifts>") -> ShiftCalendar:
        return cls._from_table(parse_toml(text, name))

    @classmethod
    def _from_table(cls, t: Table) -> ShiftCalendar:
        t.check_keys("timezone", "holidays", "shift", "planned_downtime")
        tz_name = t.str("timezone")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise t.error("timezone", f"expected an IANA timezone name, got {tz_name!r}") from None
        holidays = set()
        for text in t.list_of_str("holidays", []):
            try:
                holidays.add(dt.date.fromisoformat(text))
            except ValueError:
                raise t.error("holidays", f"expected dates YYYY-MM-DD, got {text!r}") from None
        patterns = tuple(_pattern(s) for s in t.tables("shift", required=True))
        if not patterns:
            raise t.error("shift", "expected at least one [[shift]]")
        downtime = []
        for d in t.tables("planned_downtime"):
            d.check_keys("start", "end", "reason")
            s, e = _local_moment(d, "start", tz), _local_moment(d, "end", tz)
            if e <= s:
                raise d.error("end", "expected a time after start")
            downtime.append((s, e, d.str("reason", "")))
        calendar = cls(tz, patterns, frozenset(holidays), tuple(downtime), t.file)
        calendar._check_no_overlap(t)
        return calendar

    def _check_no_overlap(self, t: Table) -> None:
        # Overlapping shifts would count the same hour twice in a day roll-up. Two weeks show
        # every weekly pattern including a Sunday-night shift running into Monday.
        monday = dt.datetime(2024, 1, 1, tzinfo=self.tz)
        shifts = self.instances(_to_ns(monday), _to_ns(monday + dt.timedelta(days=14)))
        for a, b in itertools.pairwise(shifts):
            if b.start_ns < a.end_ns:
                raise t.error("shift", f"shifts {a.name!r} and {b.name!r} overlap")

    def instances(self, start_ns: int, end_ns: int) -> list[ShiftInstance]:
        """Every shift instance overlapping ``[start_ns, end_ns)``, sorted by start (unclipped)."""
        if end_ns <= start_ns:
            return []
        first = _from_ns(start_ns, self.tz).date() - dt.timedelta(days=1)
        last = _from_ns(end_ns, self.tz).date()
        out: list[ShiftInstance] = []
        day = first
        while day <= last:  # one iteration per calendar day, not per event
            if day not in self.holidays:
                for p in self.patterns:
                    if day.weekday() not in p.days:
                        continue
                    begin = dt.datetime.combine(day, dt.time(), self.tz) + dt.timedelta(
                        seconds=p.start.seconds
                    )
                    s = _to_ns(begin)
                    e = _to_ns(begin + dt.timedelta(seconds=p.length_s))
                    if e <= start_ns or s >= end_ns:
                        continue
                    breaks = tuple(
                        (
                            _to_ns(begin + dt.timedelta(seconds=a)),
                            _to_ns(begin + dt.timedelta(seconds=b)),
                        )
                        for a, b in p.breaks
                    )
                    out.append(ShiftInstance(p.name, day, s, e, breaks))
            day += dt.timedelta(days=1)
        out.sort(key=lambda i: i.start_ns)
        return out

    def planned(self, start_ns: int, end_ns: int) -> PlannedTime:
        """The plan over ``[start_ns, end_ns)``: shifts are POT; breaks, holidays' absence and
        one-off planned downtime shape PDOT (see :class:`PlannedTime`)."""
        shifts = self.instances(start_ns, end_ns)
        pot = [(i.start_ns, i.end_ns) for i in shifts]
        pdot = [b for i in shifts for b in i.breaks]
        pdot += [(s, e) for s, e, _ in self.planned_downtime]
        return planned_step(start_ns, end_ns, pot, pdot)

    def local_date(self, ns: int) -> dt.date:
        return _from_ns(ns, self.tz).date()


def _local_moment(t: Table, key: str, tz: ZoneInfo) -> int:
    text = t.str(key)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise t.error(key, f"expected a local date-time YYYY-MM-DDTHH:MM, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return _to_ns(moment)


def _pattern(t: Table) -> _ShiftPattern:
    t.check_keys("name", "start", "end", "days", "breaks", "break")
    name = t.str("name")
    start = _Clock.parse(t, "start")
    end = _Clock.parse(t, "end")
    length = end.seconds - start.seconds
    if length <= 0:
        length += 86400  # runs past midnight (or 24 h when end == start)
    days_text = t.list_of_str("days", list(_DAYS))
    days = set()
    for d in days_text:
        if d.lower()[:3] not in _DAYS:
            raise t.error("days", f"expected day names mon..sun, got {d!r}")
        days.add(_DAYS.index(d.lower()[:3]))
    breaks = []
    for b in (*t.tables("breaks"), *t.tables("break")):
        b.check_keys("start", "end")
        bs = (_Clock.parse(b, "start").seconds - start.seconds) % 86400
        be = (_Clock.parse(b, "end").seconds - start.seconds) % 86400 or 86400
        if not (0 <= bs < be <= length):
            raise b.error("end", f"expected a break inside shift {name!r}")
        breaks.append((bs, be))
    return _ShiftPattern(name, start, length, frozenset(days), tuple(sorted(breaks)))


__all__ = [
    "ConfigError", "PlanSource", "PlannedTime", "ShiftCalendar", "ShiftInstance", "planned_step",
]  # fmt: skip
