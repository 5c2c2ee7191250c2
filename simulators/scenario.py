"""Scenario files: which enterprises, kilns and presses a fleet simulates, and scheduled faults.

TOML, checked when loaded; a broken file raises :class:`ScenarioError` naming the file, the key
and what was expected (``shangbu.toml: enterprise[2].kiln[0].zones: expected an integer in
[1, 32], got 0``). The simulator has its own loader on purpose: it imports nothing from the
platform. Built-in scenarios live in ``simulators/scenarios/<name>.toml``; ``load_scenario``
takes a built-in name or a path. See docs/simulators.md for every key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.programmes import BUILTIN, Programme, segment_from_dict

SCENARIO_DIR = Path(__file__).parent / "scenarios"

FAULT_KINDS = (
    "broken_thermocouple",
    "nan_reading",
    "clock_skew",
    "burner_trip",
    "stall",
    "overshoot",
    "push_stop",
    "press_breakdown",
    "short_stop",
    "reject_burst",
    "garbage",
    "opcua_restart",
    "mqtt_disconnect",
)


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``str()`` reads ``file: key: expectation``."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        super().__init__(f"{file}: {key or '<top>'}: {expected}")


@dataclass(frozen=True)
class KilnSpec:
    enterprise: str
    site: str
    line: str
    id: str
    kind: str  # shuttle | tunnel
    zones: int
    thermocouples_per_zone: int
    programmes: tuple[str, ...] = ()
    first_firing_h: float = 0.25
    idle_hours: float = 4.0
    profile_c: tuple[float, ...] = ()
    push_interval_min: float = 52.0
    length_m: float = 96.0
    nameplate_cars_per_hour: float = 1.2

    @property
    def asset(self) -> str:
        return f"{self.enterprise}/{self.site}/{self.line}/{self.id}"


@dataclass(frozen=True)
class PressSpec:
    enterprise: str
    site: str
    line: str
    id: str
    kind: str  # isostatic | extruder
    style: str  # json | sparkplug
    ideal_cycle_time_s: float

    @property
    def asset(self) -> str:
        return f"{self.enterprise}/{self.site}/{self.line}/{self.id}"


@dataclass(frozen=True)
class FaultSpec:
    target: str  # an asset path, or an enterprise id for opcua_restart / mqtt_disconnect
    kind: str
    at_h: float  # simulated hours after the fleet starts
    duration_h: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    topic_root: str
    sparkplug_group: str
    sample_interval_s: float
    max_publish_hz: float
    enterprises: tuple[str, ...]
    kilns: tuple[KilnSpec, ...]
    presses: tuple[PressSpec, ...]
    programmes: dict[str, Programme]
    faults: tuple[FaultSpec, ...]
    forming_line: dict[str, str] = field(default_factory=dict)

    def asset(self, path: str) -> KilnSpec | PressSpec:
        for a in (*self.kilns, *self.presses):
            if a.asset == path:
                return a
        raise KeyError(f"no asset {path!r} in scenario {self.name!r}")


class _T:
    """Typed access to one TOML table with errors that say where."""

    def __init__(self, data: dict[str, Any], file: str, prefix: str) -> None:
        self.d, self.file, self.prefix = data, file, prefix

    def err(self, key: str, expected: str) -> ScenarioError:
        return ScenarioError(self.file, f"{self.prefix}.{key}" if self.prefix else key, expected)

    def keys(self, *allowed: str) -> None:
        for k in self.d:
            if k not in allowed:
                raise self.err(k, f"unknown key (expected one of: {', '.join(allowed)})")

    def get(
        self,
        key: str,
        kind: str,
        default: Any = ...,
        lo: float | None = None,
        hi: float | None = None,
        choices: tuple[str, ...] = (),
    ) -> Any:
        if key not in self.d:
            if default is ...:
                raise self.err(key, "required key is missing")
            return default
        v = self.d[key]
        if kind == "str":
            if not isinstance(v, str) or not v:
                raise self.err(key, f"expected a non-empty string, got {v!r}")
            if choices and v not in choices:
                raise self.err(key, f"expected one of {', '.join(choices)}, got {v!r}")
            return v
        if kind in ("int", "float"):
            ok = isinstance(v, int) if kind == "int" else isinstance(v, int | float)
            if not ok or isinstance(v, bool) or v != v:
                raise self.err(
                    key, f"expected {'an integer' if kind == 'int' else 'a number'}, got {v!r}"
                )
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise self.err(key, f"expected a number in [{lo}, {hi}], got {v!r}")
            return v if kind == "int" else float(v)
        if kind == "floats":
            if not isinstance(v, list) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in v
            ):
                raise self.err(key, f"expected a list of numbers, got {v!r}")
            return tuple(float(x) for x in v)
        if kind == "strs":
            if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                raise self.err(key, f"expected a list of strings, got {v!r}")
            return tuple(v)
        raise AssertionError(kind)

    def tables(self, key: str) -> list[_T]:
        v = self.d.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.err(key, f"expected an array of tables [[{key}]]")
        return [
            _T(x, self.file, f"{self.prefix + '.' if self.prefix else ''}{key}[{i}]")
            for i, x in enumerate(v)
        ]


def _ident(t: _T, key: str) -> str:
    v = t.get(key, "str")
    if not all(c.isalnum() or c in "-_" for c in v):
        raise t.err(
            key, f"expected letters, digits, '-' or '_' (it becomes a topic and node id), got {v!r}"
        )
    return v


def parse_scenario(data: dict[str, Any], file: str) -> Scenario:
    """Check and build a scenario from parsed TOML (``file`` names it in errors)."""
    top = _T(data, file, "")
    top.keys(
        "name",
        "topic_root",
        "sparkplug_group",
        "sample_interval_s",
        "max_publish_hz",
        "programme",
        "enterprise",
        "fault",
    )
    name = top.get("name", "str")
    programmes = dict(BUILTIN)
    for p in top.tables("programme"):
        p.keys("name", "segments")
        pname = p.get("name", "str")
        segs = p.d.get("segments")
        if not isinstance(segs, list) or not segs or not all(isinstance(s, dict) for s in segs):
            raise p.err("segments", "expected a non-empty list of segment tables")
        try:
            programmes[pname] = Programme(
                pname,
                tuple(
                    segment_from_dict(s, f"{p.prefix}.segments[{i}]") for i, s in enumerate(segs)
                ),
            )
        except ValueError as exc:
            raise ScenarioError(file, "", str(exc)) from None
    kilns: list[KilnSpec] = []
    presses: list[PressSpec] = []
    enterprises: list[str] = []
    forming: dict[str, str] = {}
    for e in top.tables("enterprise"):
        e.keys("id", "site", "kiln", "press")
        eid = _ident(e, "id")
        if eid in enterprises:
            raise e.err("id", f"duplicate enterprise {eid!r}")
        enterprises.append(eid)
        site = e.get("site", "str", "plant-1")
        for k in e.tables("kiln"):
            k.keys(
                "id",
                "line",
                "kind",
                "zones",
                "thermocouples_per_zone",
                "programmes",
                "first_firing_h",
                "idle_hours",
                "profile_c",
                "push_interval_min",
                "length_m",
                "nameplate_cars_per_hour",
            )
            kind = k.get("kind", "str", choices=("shuttle", "tunnel"))
            zones = k.get("zones", "int", lo=1, hi=32)
            progs = k.get(
                "programmes", "strs", ("hv-insulator-standard",) if kind == "shuttle" else ()
            )
            for pn in progs:
                if pn not in programmes:
                    raise k.err(
                        "programmes",
                        f"unknown programme {pn!r} (known: {', '.join(sorted(programmes))})",
                    )
            profile = k.get("profile_c", "floats", ())
            if kind == "tunnel" and len(profile) != zones:
                raise k.err(
                    "profile_c", f"expected {zones} temperatures (one per zone), got {len(profile)}"
                )
            if any(not 0 <= x <= 1450 for x in profile):
                raise k.err("profile_c", "expected temperatures in [0, 1450]")
            kilns.append(
                KilnSpec(
                    eid,
                    site,
                    k.get("line", "str", "firing-shop"),
                    _ident(k, "id"),
                    kind,
                    zones,
                    k.get("thermocouples_per_zone", "int", 2, lo=1, hi=8),
                    progs,
                    k.get("first_firing_h", "float", 0.25, lo=-1000.0, hi=1000.0),
                    k.get("idle_hours", "float", 4.0, lo=0.0, hi=1000.0),
                    profile,
                    k.get("push_interval_min", "float", 52.0, lo=1.0, hi=1440.0),
                    k.get("length_m", "float", 96.0, lo=1.0, hi=500.0),
                    k.get("nameplate_cars_per_hour", "float", 1.2, lo=0.01, hi=100.0),
                )
            )
        for p in e.tables("press"):
            p.keys("id", "line", "kind", "style", "ideal_cycle_time_s")
            line = p.get("line", "str", "forming-shop")
            style = p.get("style", "str", choices=("json", "sparkplug"))
            if style == "sparkplug" and forming.setdefault(eid, line) != line:
                raise p.err(
                    "line",
                    "all Sparkplug presses of an enterprise share one edge node and line",
                )
            presses.append(
                PressSpec(
                    eid,
                    site,
                    line,
                    _ident(p, "id"),
                    p.get("kind", "str", choices=("isostatic", "extruder")),
                    style,
                    p.get("ideal_cycle_time_s", "float", lo=0.5, hi=36000.0),
                )
            )
    if not enterprises:
        raise top.err("enterprise", "expected at least one [[enterprise]]")
    assets = {a.asset for a in (*kilns, *presses)}
    if len(assets) != len(kilns) + len(presses):
        raise top.err("enterprise", "duplicate asset ids")
    faults: list[FaultSpec] = []
    for f in top.tables("fault"):
        kind = f.get("kind", "str", choices=FAULT_KINDS)
        target = f.get("target", "str")
        if kind in ("opcua_restart", "mqtt_disconnect"):
            if target not in enterprises:
                raise f.err("target", f"expected an enterprise id for {kind}, got {target!r}")
        elif target not in assets:
            raise f.err(
                "target", f"expected an asset path (enterprise/site/line/asset), got {target!r}"
            )
        duration = f.get("duration_h", "float", None, lo=0.0, hi=10000.0)
        params = {k: v for k, v in f.d.items() if k not in ("kind", "target", "at_h", "duration_h")}
        faults.append(
            FaultSpec(target, kind, f.get("at_h", "float", lo=0.0, hi=100000.0), duration, params)
        )
    return Scenario(
        name=name,
        topic_root=top.get("topic_root", "str", "shangbu"),
        sparkplug_group=top.get("sparkplug_group", "str", "shangbu"),
        sample_interval_s=top.get("sample_interval_s", "float", 30.0, lo=0.1, hi=3600.0),
        max_publish_hz=top.get("max_publish_hz", "float", 2.0, lo=0.01, hi=100.0),
        enterprises=tuple(enterprises),
        kilns=tuple(kilns),
        presses=tuple(presses),
        programmes=programmes,
        faults=tuple(faults),
        forming_line=forming,
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name (``shangbu``, ``mini``) or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(
            str(name_or_path), "", f"no such scenario file or built-in (built-ins: {known})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"not valid TOML: {exc}") from None
    return parse_scenario(data, str(path.name))
