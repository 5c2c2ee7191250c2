"""Firing programmes: ramp / hold / cool segments and the travelling setpoint they define.

A programme is what the kiln controller's operator keys in. The wire carries it as JSON
(``ProgrammeSegments``), one dict per segment, exactly these shapes::

    {"kind": "ramp", "rate_c_h": 30, "target_c": 500}      heat at a rate to a target
    {"kind": "hold", "hours": 2}                            hold the last target
    {"kind": "cool", "rate_c_h": 100, "target_c": 500}      controlled cooling (fans)
    {"kind": "natural_cool", "target_c": 80}                burners and fans off

The controller follows a *time-based* travelling setpoint (no hold-back): when the kiln cannot
keep up, the setpoint runs ahead and the deviation shows it, which is what analytics must judge.

Built-in programmes follow ../shared/domain.md (medium white porcelain, electric insulators):
dehydration at 20-40 C/h to 500 C, slow through the 573 C quartz inversion, oxidation to
900 C, vitrification at 25-35 C/h to ~1300 C, soak at peak, cooling fast to 800 C and slowly
(~60 C/h) through the quartz inversion on the way down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SEGMENT_KINDS = ("ramp", "hold", "cool", "natural_cool")


@dataclass(frozen=True)
class Segment:
    kind: str
    rate_c_h: float = 0.0
    target_c: float = 0.0
    hours: float = 0.0

    def to_wire(self) -> dict[str, object]:
        if self.kind == "hold":
            return {"kind": "hold", "hours": _num(self.hours)}
        if self.kind == "natural_cool":
            return {"kind": "natural_cool", "target_c": _num(self.target_c)}
        return {"kind": self.kind, "rate_c_h": _num(self.rate_c_h), "target_c": _num(self.target_c)}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def segment_from_dict(d: dict[str, object], where: str) -> Segment:
    """Build a segment from its wire/scenario dict; ``ValueError`` names ``where`` and the key."""
    kind = d.get("kind")
    if kind not in SEGMENT_KINDS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(SEGMENT_KINDS)}, got {kind!r}")

    def number(key: str, lo: float, hi: float) -> float:
        v = d.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"{where}.{key}: expected a number in [{lo}, {hi}], got {v!r}")
        return float(v)

    allowed = {
        "ramp": {"rate_c_h", "target_c"},
        "cool": {"rate_c_h", "target_c"},
        "hold": {"hours"},
        "natural_cool": {"target_c"},
    }[kind]
    extra = set(d) - allowed - {"kind"}
    if extra:
        raise ValueError(f"{where}: unknown key(s) {sorted(extra)} for a {kind} segment")
    if kind == "hold":
        return Segment("hold", hours=number("hours", 0.0, 500.0))
    if kind == "natural_cool":
        return Segment("natural_cool", target_c=number("target_c", 0.0, 1500.0))
    return Segment(
        kind, rate_c_h=number("rate_c_h", 0.1, 2000.0), target_c=number("target_c", 0.0, 1500.0)
    )


@dataclass(frozen=True)
class Programme:
    name: str
    segments: tuple[Segment, ...]

    def wire_json(self) -> str:
        return json.dumps([s.to_wire() for s in self.segments], separators=(",", ":"))

    @property
    def peak_c(self) -> float:
        return max((s.target_c for s in self.segments if s.kind == "ramp"), default=0.0)


@dataclass(frozen=True)
class Knot:
    """One corner of the travelling setpoint: at ``t_h`` hours into the firing, ``sp_c``."""

    t_h: float
    sp_c: float
    segment: int  # index of the segment that starts here


class Schedule:
    """The travelling setpoint of a programme started at ``start_c``.

    ``at(t_h)`` gives ``(setpoint_c, rate_c_h, segment_index)``; after the last timed segment a
    trailing ``natural_cool`` reports its target and rate 0 (it ends on temperature, not time).
    """

    def __init__(self, programme: Programme, start_c: float) -> None:
        self.programme = programme
        knots: list[Knot] = []
        t, sp = 0.0, start_c
        for i, seg in enumerate(programme.segments):
            knots.append(Knot(t, sp, i))
            if seg.kind in ("ramp", "cool"):
                t += abs(seg.target_c - sp) / seg.rate_c_h
                sp = seg.target_c
            elif seg.kind == "hold":
                t += seg.hours
            else:  # natural_cool: open-ended, the kiln decides how long it takes
                break
        self.knots = knots
        self.end_h = t  # end of the timed part
        self.end_c = sp

    def at(self, t_h: float) -> tuple[float, float, int]:
        segs = self.programme.segments
        for k in reversed(self.knots):
            if t_h >= k.t_h:
                seg = segs[k.segment]
                if seg.kind == "natural_cool":
                    return seg.target_c, 0.0, k.segment
                if seg.kind == "hold":
                    if t_h < k.t_h + seg.hours:
                        return k.sp_c, 0.0, k.segment
                    break
                duration = abs(seg.target_c - k.sp_c) / seg.rate_c_h
                if t_h < k.t_h + duration:
                    sign = 1.0 if seg.target_c >= k.sp_c else -1.0
                    return (
                        k.sp_c + sign * seg.rate_c_h * (t_h - k.t_h),
                        sign * seg.rate_c_h,
                        k.segment,
                    )
                break
        # past the end of the timed part
        last = len(segs) - 1
        if segs[last].kind == "natural_cool":
            return segs[last].target_c, 0.0, last
        return self.end_c, 0.0, last

    def finished(self, t_h: float, mean_temperature_c: float) -> bool:
        """True when the firing is over: time is up and, for a natural cool, the kiln is cold."""
        segs = self.programme.segments
        if segs and segs[-1].kind == "natural_cool":
            return t_h >= self.end_h and mean_temperature_c <= segs[-1].target_c
        return t_h >= self.end_h


def _p(name: str, *segs: dict[str, object]) -> Programme:
    return Programme(name, tuple(segment_from_dict(s, name) for s in segs))


# Large HV insulators (thick walls): slow dehydration and vitrification, ~70 h cold to cold.
INSULATOR_LARGE = _p(
    "hv-insulator-large",
    {"kind": "ramp", "rate_c_h": 25, "target_c": 500},  # dehydration (domain.md: 20-40 C/h)
    {"kind": "ramp", "rate_c_h": 20, "target_c": 620},  # slow through the 573 C quartz inversion
    {"kind": "ramp", "rate_c_h": 55, "target_c": 900},  # oxidation (50-70 C/h), burn out carbon
    {"kind": "hold", "hours": 2},  # finish burn-out before reduction (avoids black core)
    {"kind": "ramp", "rate_c_h": 28, "target_c": 1300},  # vitrification (25-35 C/h), reducing
    {"kind": "hold", "hours": 3},  # soak at peak
    {"kind": "cool", "rate_c_h": 200, "target_c": 800},  # fast cooling through the plastic range
    {"kind": "cool", "rate_c_h": 120, "target_c": 600},
    {"kind": "cool", "rate_c_h": 50, "target_c": 520},  # slow through the quartz inversion
    {"kind": "natural_cool", "target_c": 80},
)

# Standard line-post insulators: faster, ~45 h cold to cold.
INSULATOR_STANDARD = _p(
    "hv-insulator-standard",
    {"kind": "ramp", "rate_c_h": 40, "target_c": 500},
    {"kind": "ramp", "rate_c_h": 30, "target_c": 620},
    {"kind": "ramp", "rate_c_h": 65, "target_c": 1000},
    {"kind": "hold", "hours": 1},
    {"kind": "ramp", "rate_c_h": 33, "target_c": 1280},
    {"kind": "hold", "hours": 2},
    {"kind": "cool", "rate_c_h": 250, "target_c": 800},
    {"kind": "cool", "rate_c_h": 150, "target_c": 600},
    {"kind": "cool", "rate_c_h": 60, "target_c": 500},
    {"kind": "natural_cool", "target_c": 100},
)

# A short programme for tests and demos that want many firings quickly (not for real ware).
TEST_FAST = _p(
    "test-fast",
    {"kind": "ramp", "rate_c_h": 120, "target_c": 600},
    {"kind": "ramp", "rate_c_h": 80, "target_c": 1000},
    {"kind": "hold", "hours": 1},
    {"kind": "cool", "rate_c_h": 150, "target_c": 500},
    {"kind": "natural_cool", "target_c": 150},
)

BUILTIN: dict[str, Programme] = {
    p.name: p for p in (INSULATOR_LARGE, INSULATOR_STANDARD, TEST_FAST)
}
