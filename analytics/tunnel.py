"""Tunnel kilns: the setpoint a kiln car sees, and the curve it actually experienced.

A tunnel kiln does not run a programme in time; it holds a designed temperature *profile along
its length* (preheat, firing, cooling zones) and the ware travels through it on cars. A push
moves every car forward by one car pitch (``length_m / cars_in_kiln``); between pushes the cars
stand still. So a car's time-temperature curve is the profile sampled at its position, and the
push schedule decides how fast it travels (domain.md §1: push rate within 2 % of set rate).

* :func:`car_positions_m` - where each car's centre is at each instant (NaN outside the kiln);
* :func:`tunnel_setpoint_c` - the designed profile at those positions: the setpoint the car saw;
* :func:`experienced_curve_c` - the zone thermocouple readings interpolated (linearly, along the
  kiln) to the car's position: the curve the car actually went through.

Judge a car with :func:`analytics.conformance.judge_curve` (experienced vs designed). All
functions are vectorised over cars and samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import ConfigError, Table, load_toml


@dataclass(frozen=True, slots=True)
class TunnelProfile:
    """Designed temperature along the kiln: ``temperature_c[i]`` at ``position_m[i]`` from the
    entrance, linear in between; ``cars_in_kiln`` sets the pitch a push moves a car."""

    position_m: np.ndarray
    temperature_c: np.ndarray
    length_m: float
    cars_in_kiln: int
    name: str = ""

    def __post_init__(self) -> None:
        p = np.asarray(self.position_m, dtype=np.float64)
        c = np.asarray(self.temperature_c, dtype=np.float64)
        if p.ndim != 1 or p.shape != c.shape or p.size < 2:
            raise ValueError("profile: position_m and temperature_c need >= 2 equal-length points")
        if not (np.isfinite(p).all() and np.isfinite(c).all()):
            raise ValueError("profile: positions and temperatures must be finite")
        if np.any(np.diff(p) <= 0):
            raise ValueError("profile: position_m must increase strictly")
        if not self.length_m > 0 or p[0] < 0 or p[-1] > self.length_m:
            raise ValueError(f"profile: positions must lie within the kiln (0..{self.length_m} m)")
        if not (isinstance(self.cars_in_kiln, int) and self.cars_in_kiln >= 1):
            raise ValueError("profile: cars_in_kiln must be an integer >= 1")
        object.__setattr__(self, "position_m", p)
        object.__setattr__(self, "temperature_c", c)

    @property
    def pitch_m(self) -> float:
        return self.length_m / self.cars_in_kiln

    def at(self, position_m: np.ndarray) -> np.ndarray:
        """Designed temperature at positions (NaN outside the kiln or for NaN positions)."""
        x = np.asarray(position_m, dtype=np.float64)
        out = np.interp(x, self.position_m, self.temperature_c)
        return np.where((x >= 0) & (x <= self.length_m), out, np.nan)

    @classmethod
    def from_table(cls, table: Table) -> TunnelProfile:
        """``length_m``, ``cars_in_kiln``, ``[[point]] position_m / temperature_c``."""
        table.check_keys("name", "length_m", "cars_in_kiln", "point")
        length = table.float("length_m", min=1.0, max=1000.0)
        cars = table.int("cars_in_kiln", min=1, max=1000)
        pos, temp = [], []
        for point in table.tables("point", required=True):
            point.check_keys("position_m", "temperature_c")
            pos.append(point.float("position_m", min=0.0, max=length))
            temp.append(point.float("temperature_c", min=-50.0, max=2000.0))
        try:
            return cls(np.asarray(pos), np.asarray(temp), length, cars, table.str("name", ""))
        except ValueError as exc:
            raise ConfigError(table.file, table.key("point"), str(exc)) from None

    @classmethod
    def load(cls, path: str | Path) -> TunnelProfile:
        return cls.from_table(load_toml(path))


def car_positions_m(
    push_ns: np.ndarray,
    entry_push: np.ndarray | int,
    time_ns: np.ndarray,
    pitch_m: float,
    length_m: float,
) -> np.ndarray:
    """Centre position of each car at each instant: ``(cars, N)`` (or ``(N,)`` for one car).

    ``push_ns`` are the push instants (sorted); a car enters with push ``entry_push`` (index
    into ``push_ns``) and after its k-th push (k >= 1, counting the entry push) stands with its
    centre at ``(k - 0.5) * pitch_m``. NaN before it entered and after it left the kiln.
    """
    pushes = np.asarray(push_ns, dtype=np.int64)
    if pushes.size > 1 and np.any(np.diff(pushes) < 0):
        raise ValueError("push_ns must be sorted ascending")
    entry = np.asarray(entry_push, dtype=np.int64)
    t = np.asarray(time_ns, dtype=np.int64)
    done = np.searchsorted(pushes, t, side="right")  # pushes completed at each instant (N,)
    k = done[None, :] - entry.reshape(-1)[:, None]  # pushes this car has had
    pos = (k - 0.5) * pitch_m
    pos = np.where((k >= 1) & (pos <= length_m), pos, np.nan)
    return pos[0] if entry.ndim == 0 else pos


def tunnel_setpoint_c(
    profile: TunnelProfile, push_ns: np.ndarray, entry_push: np.ndarray | int, time_ns: np.ndarray
) -> np.ndarray:
    """The designed temperature each car saw at each instant (``(cars, N)`` or ``(N,)``)."""
    pos = car_positions_m(push_ns, entry_push, time_ns, profile.pitch_m, profile.length_m)
    return profile.at(pos)


def experienced_curve_c(
    zone_position_m: Sequence[float] | np.ndarray,
    zone_temps_c: np.ndarray,
    car_position_m: np.ndarray,
) -> np.ndarray:
    """Temperature each car experienced: zone readings interpolated to the car's position.

    ``zone_temps_c`` is ``(zones, N)`` on the same time axis as ``car_position_m`` (``(cars, N)``
    or ``(N,)``); zones sorted by position. Beyond the first/last zone the nearest zone's reading
    is used; NaN where the car is outside the kiln or a bracketing zone reading is missing
    (a missing zone is never bridged by a farther one).
    """
    zp = np.asarray(zone_position_m, dtype=np.float64)
    zt = np.asarray(zone_temps_c, dtype=np.float64)
    if zt.ndim != 2 or zt.shape[0] != zp.size or zp.size < 1:
        raise ValueError(f"zone_temps_c must be (zones={zp.size}, N), got {zt.shape}")
    if np.any(np.diff(zp) <= 0):
        raise ValueError("zone_position_m must increase strictly")
    pos = np.asarray(car_position_m, dtype=np.float64)
    one = pos.ndim == 1
    pos = np.atleast_2d(pos)
    if pos.shape[1] != zt.shape[1]:
        raise ValueError("car_position_m and zone_temps_c need the same number of samples")
    inside = np.isfinite(pos)
    x = np.where(inside, pos, zp[0])
    hi = np.clip(np.searchsorted(zp, x, side="right"), 1, max(zp.size - 1, 1))
    lo = hi - 1
    if zp.size == 1:
        out = np.broadcast_to(zt[0], pos.shape).copy()
    else:
        frac = np.clip((x - zp[lo]) / (zp[hi] - zp[lo]), 0.0, 1.0)
        cols = np.broadcast_to(np.arange(zt.shape[1]), pos.shape)
        a, b = zt[lo, cols], zt[hi, cols]
        # Exactly at a zone (frac 0 or 1) only that zone is needed; 0 * NaN would spoil it.
        out = np.where(frac == 0, a, np.where(frac == 1, b, a + frac * (b - a)))
    out = np.where(inside, out, np.nan)
    return out[0] if one else out


@dataclass(frozen=True, slots=True)
class CarCurve:
    """One car's trip: its position, the designed setpoint and the experienced temperature."""

    entry_push: int
    position_m: np.ndarray
    setpoint_c: np.ndarray
    temperature_c: np.ndarray


def car_curves(
    profile: TunnelProfile,
    push_ns: np.ndarray,
    entry_push: Sequence[int] | np.ndarray,
    time_ns: np.ndarray,
    zone_position_m: Sequence[float] | np.ndarray,
    zone_temps_c: np.ndarray,
) -> list[CarCurve]:
    """Designed and experienced curves of several cars at once (vectorised over cars)."""
    entries = np.asarray(entry_push, dtype=np.int64).reshape(-1)
    pos = car_positions_m(push_ns, entries, time_ns, profile.pitch_m, profile.length_m)
    sp = profile.at(pos)
    actual = experienced_curve_c(zone_position_m, zone_temps_c, pos)
    return [CarCurve(int(e), pos[i], sp[i], actual[i]) for i, e in enumerate(entries)]


# Car push rate should stay within 2 % of the set rate (ceramicindustry.com, domain.md §1).
PUSH_RATE_TOLERANCE = 0.02


@dataclass(frozen=True, slots=True)
class PushRate:
    """How steadily a tunnel kiln was pushed against its set rate."""

    pushes: int
    set_cars_per_hour: float
    cars_per_hour: float  # achieved over the span of the pushes; NaN with fewer than 2
    deviation: float  # cars_per_hour / set - 1
    within_tolerance: bool
    late_pushes: int  # intervals longer than the set interval x (1 + tolerance)
    longest_interval_s: float

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            v = getattr(self, name)
            out[name] = None if isinstance(v, float) and not np.isfinite(v) else v
        return out


def push_rate(
    push_ns: np.ndarray, set_cars_per_hour: float, *, tolerance: float = PUSH_RATE_TOLERANCE
) -> PushRate:
    """Achieved push rate and late pushes against ``set_cars_per_hour`` (one car per push)."""
    if not set_cars_per_hour > 0:
        raise ValueError(f"set_cars_per_hour must be > 0, got {set_cars_per_hour}")
    pushes = np.asarray(push_ns, dtype=np.int64)
    if pushes.size > 1 and np.any(np.diff(pushes) < 0):
        raise ValueError("push_ns must be sorted ascending")
    if pushes.size < 2:
        return PushRate(int(pushes.size), set_cars_per_hour, np.nan, np.nan, False, 0, np.nan)
    intervals_s = np.diff(pushes) / 1e9
    span_h = (pushes[-1] - pushes[0]) / 3.6e12
    rate = (pushes.size - 1) / span_h if span_h > 0 else np.inf
    deviation = rate / set_cars_per_hour - 1.0
    set_interval_s = 3600.0 / set_cars_per_hour
    return PushRate(
        pushes=int(pushes.size),
        set_cars_per_hour=float(set_cars_per_hour),
        cars_per_hour=float(rate),
        deviation=float(deviation),
        within_tolerance=bool(abs(deviation) <= tolerance),
        late_pushes=int(np.count_nonzero(intervals_s > set_interval_s * (1 + tolerance))),
        longest_interval_s=float(intervals_s.max()),
    )
