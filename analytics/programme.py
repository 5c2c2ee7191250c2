"""Firing programmes: ramp / hold / cool / natural-cool segments and the travelling setpoint.

A kiln controller runs a *programme*: a list of segments, each starting where the previous one
ended (the first from ``start_c``, the cold kiln):

* ``ramp``         heat at ``rate_c_h`` up to ``target_c``;
* ``hold``         soak for ``hours`` at the temperature reached;
* ``cool``         controlled cooling at ``rate_c_h`` down to ``target_c``;
* ``natural_cool`` burners off, the kiln cools as fast as it cools down to ``target_c``. It has no
  setpoint (nothing to judge against) and no known duration, so it may only be the last segment.

The *travelling setpoint* is the piecewise-linear curve the controller steers each thermocouple
towards; :meth:`Programme.setpoint_c` evaluates it at programme time in seconds (0 = firing start).

Sources: TOML (:func:`load_programme`, :func:`parse_programme`; see
``examples/programmes/porcelain-hv-insulator.toml``) and the JSON list the kiln simulator serves
(:meth:`Programme.from_segments`). Impossible programmes (a ramp that goes down, a cool that goes
up, a zero rate, a target above the kiln's limit...) raise :class:`ProgrammeError` or, from a file,
:class:`core.config.ConfigError` naming the file and the key.

Pure: no I/O beyond reading the file you name; no globals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ConfigError, Table, load_toml, parse_toml

KINDS = ("ramp", "hold", "cool", "natural_cool")

# A real porcelain kiln tops out near 1400 °C (domain.md §1: insulators fire at 1180-1370 °C);
# programmes may name a lower limit for a particular kiln with max_temperature_c.
DEFAULT_MAX_TEMPERATURE_C = 1400.0
DEFAULT_START_C = 20.0
# Rates beyond this are typos (°C/min entered as °C/h...), not programmes: even the fast cool
# from peak to 800 °C in a tunnel kiln is ~800 °C/h (domain.md §1).
MAX_RATE_C_H = 2000.0


class ProgrammeError(ValueError):
    """A programme that cannot be fired; the message names the segment and the reason."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One programme segment. ``rate_c_h`` is positive for both ramp and cool (a magnitude)."""

    kind: str
    target_c: float | None = None  # ramp / cool / natural_cool
    rate_c_h: float | None = None  # ramp / cool
    hours: float | None = None  # hold

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.rate_c_h is not None:
            out["rate_c_h"] = self.rate_c_h
        if self.target_c is not None:
            out["target_c"] = self.target_c
        if self.hours is not None:
            out["hours"] = self.hours
        return out


@dataclass(frozen=True, slots=True)
class SegmentSpan:
    """Where a segment sits in programme time (seconds from the firing start)."""

    index: int
    kind: str
    start_s: float
    end_s: float  # math.inf for natural_cool
    start_c: float
    end_c: float
    rate_c_h: float | None  # signed: + heating, - cooling; None for natural_cool
    hold_s: float | None  # hold only


@dataclass(frozen=True, slots=True)
class Programme:
    """A validated firing programme. Build with :meth:`from_segments` or the loaders below."""

    segments: tuple[Segment, ...]
    spans: tuple[SegmentSpan, ...]
    name: str = ""
    start_c: float = DEFAULT_START_C
    max_temperature_c: float = DEFAULT_MAX_TEMPERATURE_C

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_segments(
        cls,
        segments: Sequence[Segment | Mapping[str, Any]],
        *,
        name: str = "",
        start_c: float = DEFAULT_START_C,
        max_temperature_c: float = DEFAULT_MAX_TEMPERATURE_C,
    ) -> Programme:
        """Validate segments (``Segment`` objects or the simulator's JSON dicts) into a programme.

        Raises :class:`ProgrammeError` naming the first impossible segment.
        """
        if not _finite(start_c) or not _finite(max_temperature_c):
            raise ProgrammeError("start_c and max_temperature_c must be finite numbers")
        if start_c >= max_temperature_c:
            raise ProgrammeError(
                f"start_c {start_c} °C is not below max_temperature_c {max_temperature_c} °C"
            )
        if isinstance(segments, str | bytes) or not isinstance(segments, Sequence):
            raise ProgrammeError("expected a list of segments")
        if not segments:
            raise ProgrammeError("a programme needs at least one segment")
        parsed = tuple(_coerce(i, s) for i, s in enumerate(segments))
        spans = _spans(parsed, start_c, max_temperature_c)
        return cls(parsed, spans, name, float(start_c), float(max_temperature_c))

    # -- the travelling setpoint --------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Programme time at which the last timed segment ends (natural cool not included)."""
        timed = [s for s in self.spans if s.kind != "natural_cool"]
        return timed[-1].end_s if timed else 0.0

    @property
    def peak_c(self) -> float:
        return max(max(s.start_c, s.end_c) for s in self.spans)

    def breakpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """``(time_s, setpoint_c)`` corners of the piecewise-linear setpoint (timed segments)."""
        times = [0.0]
        temps = [self.start_c]
        for span in self.spans:
            if span.kind == "natural_cool":
                break
            times.append(span.end_s)
            temps.append(span.end_c)
        return np.asarray(times, dtype=np.float64), np.asarray(temps, dtype=np.float64)

    def setpoint_c(self, time_s: np.ndarray, *, before_start_c: float | None = None) -> np.ndarray:
        """The travelling setpoint at programme times ``time_s`` (float seconds, any shape).

        NaN where there is nothing to judge against: before 0 (unless ``before_start_c`` is
        given - :func:`analytics.firing_clock.estimate_start_ns` uses ``start_c`` there), during a
        natural cool and after the programme's end.
        """
        t = np.asarray(time_s, dtype=np.float64)
        bt, bc = self.breakpoints()
        out = np.interp(t, bt, bc)
        fill_before = np.nan if before_start_c is None else before_start_c
        out[t < 0] = fill_before
        out[t > bt[-1]] = np.nan
        return out

    def segment_index(self, time_s: np.ndarray) -> np.ndarray:
        """Index of the segment running at each programme time; -1 before the start and
        ``len(segments)`` after the end (a natural cool never ends)."""
        t = np.asarray(time_s, dtype=np.float64)
        starts = np.asarray([s.start_s for s in self.spans])
        idx = np.searchsorted(starts, t, side="right") - 1
        last = self.spans[-1]
        after = t > last.end_s
        idx[after] = len(self.spans)
        idx[t < 0] = -1
        return idx

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start_c": self.start_c,
            "max_temperature_c": self.max_temperature_c,
            "duration_s": self.duration_s,
            "segments": [s.to_dict() for s in self.segments],
        }


# -- loaders -----------------------------------------------------------------------------------


def load_programme(path: str | Path) -> Programme:
    """Load a programme TOML file; any problem is a ConfigError naming file and key."""
    return programme_from_table(load_toml(path))


def parse_programme(text: str, name: str = "<string>") -> Programme:
    """Like :func:`load_programme` for TOML text already in memory."""
    return programme_from_table(parse_toml(text, name))


def programme_from_table(table: Table) -> Programme:
    """Build a programme from a checked TOML table::

    name = "HV insulator, 1300 °C"
    start_c = 20
    max_temperature_c = 1400
    [[segment]]
    kind = "ramp"
    rate_c_h = 30
    target_c = 500
    """
    table.check_keys("name", "description", "start_c", "max_temperature_c", "segment")
    name = table.str("name", "")
    table.str("description", "")
    start_c = table.float("start_c", DEFAULT_START_C, min=-50.0, max=2000.0)
    max_c = table.float("max_temperature_c", DEFAULT_MAX_TEMPERATURE_C, min=0.0, max=2000.0)
    segments: list[Segment] = []
    tables = list(table.tables("segment", required=True))
    if not tables:
        raise table.error("segment", "at least one [[segment]]")
    for seg in tables:
        kind = seg.str("kind", choices=KINDS)
        if kind in ("ramp", "cool"):
            seg.check_keys("kind", "rate_c_h", "target_c")
            segments.append(
                Segment(
                    kind,
                    target_c=seg.float("target_c", min=-50.0, max=2000.0),
                    rate_c_h=seg.float("rate_c_h", min=0.0, max=MAX_RATE_C_H),
                )
            )
        elif kind == "hold":
            seg.check_keys("kind", "hours")
            segments.append(Segment(kind, hours=seg.float("hours", min=0.0, max=24.0 * 30)))
        else:
            seg.check_keys("kind", "target_c")
            segments.append(Segment(kind, target_c=seg.float("target_c", min=-50.0, max=2000.0)))
    try:
        return Programme.from_segments(
            segments, name=name, start_c=start_c, max_temperature_c=max_c
        )
    except ProgrammeError as exc:
        # Name the offending [[segment]] so the engineer finds the line in the file.
        key = getattr(exc, "key", "segment")
        raise ConfigError(table.file, key, str(exc)) from None


# -- validation ---------------------------------------------------------------------------------


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _error(i: int, kind: str, text: str) -> ProgrammeError:
    exc = ProgrammeError(f"segment[{i}] ({kind}): {text}")
    exc.key = f"segment[{i}]"  # type: ignore[attr-defined]
    return exc


def _coerce(i: int, raw: Segment | Mapping[str, Any]) -> Segment:
    if isinstance(raw, Segment):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        raise _error(i, "?", f"expected an object with a kind, got {raw!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _error(i, str(kind), f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    allowed = {
        "ramp": {"kind", "rate_c_h", "target_c"},
        "cool": {"kind", "rate_c_h", "target_c"},
        "hold": {"kind", "hours"},
        "natural_cool": {"kind", "target_c"},
    }[kind]
    unknown = set(raw) - allowed
    if unknown:
        raise _error(i, kind, f"unknown key(s) {sorted(unknown)} (expected {sorted(allowed)})")

    def number(key: str) -> float:
        if key not in raw:
            raise _error(i, kind, f"{key} is required")
        value = raw[key]
        if not _finite(value):
            raise _error(i, kind, f"{key} must be a finite number, got {value!r}")
        return float(value)

    if kind == "hold":
        return Segment(kind, hours=number("hours"))
    if kind == "natural_cool":
        return Segment(kind, target_c=number("target_c"))
    return Segment(kind, target_c=number("target_c"), rate_c_h=number("rate_c_h"))


def _spans(segments: tuple[Segment, ...], start_c: float, max_c: float) -> tuple[SegmentSpan, ...]:
    spans: list[SegmentSpan] = []
    t, temp = 0.0, float(start_c)
    for i, seg in enumerate(segments):
        kind = seg.kind
        if kind == "hold":
            hours = seg.hours or 0.0
            if hours <= 0:
                raise _error(i, kind, f"hours must be > 0, got {hours}")
            spans.append(SegmentSpan(i, kind, t, t + hours * 3600.0, temp, temp, 0.0, hours * 3600))
            t += hours * 3600.0
            continue
        target = float(seg.target_c)  # type: ignore[arg-type]
        if target > max_c:
            raise _error(i, kind, f"target {target} °C is above the kiln's limit {max_c} °C")
        if kind == "natural_cool":
            if i != len(segments) - 1:
                raise _error(
                    i, kind, "a natural cool has no setpoint or duration, so it must be last"
                )
            if target >= temp:
                raise _error(i, kind, f"target {target} °C is not below {temp} °C reached before")
            spans.append(SegmentSpan(i, kind, t, math.inf, temp, target, None, None))
            continue
        rate = float(seg.rate_c_h)  # type: ignore[arg-type]
        if not 0 < rate <= MAX_RATE_C_H:
            raise _error(i, kind, f"rate_c_h must be in (0, {MAX_RATE_C_H}], got {rate}")
        if kind == "ramp" and target <= temp:
            raise _error(
                i, kind, f"target {target} °C is not above {temp} °C reached before (use cool)"
            )
        if kind == "cool" and target >= temp:
            raise _error(
                i, kind, f"target {target} °C is not below {temp} °C reached before (use ramp)"
            )
        duration = abs(target - temp) / rate * 3600.0
        signed = rate if kind == "ramp" else -rate
        spans.append(SegmentSpan(i, kind, t, t + duration, temp, target, signed, None))
        t += duration
        temp = target
    return tuple(spans)
