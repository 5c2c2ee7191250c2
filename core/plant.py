"""The plant model: enterprises, sites, lines and their assets (kilns, presses).

Loaded from TOML (see ``core/shangbu.toml`` for the five key enterprises of Shangbu town)::

    [[enterprise]]
    id = "xinghai"
    name = "Xinghai Electric Porcelain"
    key = true                      # one of the town's key enterprises

      [[enterprise.site]]
      id = "plant-1"

        [[enterprise.site.line]]
        id = "firing-shop"

          [[enterprise.site.line.asset]]
          id = "kiln-1"
          type = "kiln"
          kind = "shuttle"          # shuttle (periodic) or tunnel (continuous)
          zones = 4
          thermocouples_per_zone = 2

          [[enterprise.site.line.asset]]
          id = "press-1"
          type = "press"
          kind = "isostatic"        # isostatic or extruder
          ideal_cycle_time_s = 90.0

Field names the platform expects from a kiln: ``zone{z}_tc{t}_temperature_c`` (1-based) for
thermocouples; see :meth:`Kiln.thermocouple_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.config import ConfigError, Table, load_toml, parse_toml

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")

BUILTIN_SHANGBU = Path(__file__).with_name("shangbu.toml")


def thermocouple_field(zone: int, thermocouple: int) -> str:
    """Field name of a kiln thermocouple, 1-based zone and thermocouple numbers."""
    return f"zone{zone}_tc{thermocouple}_temperature_c"


@dataclass(frozen=True, slots=True)
class Kiln:
    id: str
    path: str  # enterprise/site/line/id
    kind: str  # "shuttle" | "tunnel"
    zones: int
    thermocouples_per_zone: int
    name: str = ""
    max_temperature_c: float = 1400.0
    # Tunnel kilns: rate-based performance needs the nameplate push rate.
    nameplate_cars_per_hour: float | None = None
    length_m: float | None = None
    fuel: str = "gas"

    type = "kiln"

    def thermocouple_fields(self) -> list[str]:
        return [
            thermocouple_field(z, t)
            for z in range(1, self.zones + 1)
            for t in range(1, self.thermocouples_per_zone + 1)
        ]


@dataclass(frozen=True, slots=True)
class Press:
    id: str
    path: str
    kind: str  # "isostatic" | "extruder"
    ideal_cycle_time_s: float
    name: str = ""

    type = "press"


Asset = Kiln | Press


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    path: str
    name: str
    assets: tuple[Asset, ...]


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    path: str
    name: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: str
    name: str
    key: bool
    sites: tuple[Site, ...]

    @property
    def path(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class PlantModel:
    enterprises: tuple[Enterprise, ...]
    source: str = ""
    _by_path: dict[str, Asset] = field(default_factory=dict, repr=False, compare=False)

    def assets(self) -> Iterator[Asset]:
        for e in self.enterprises:
            for s in e.sites:
                for line in s.lines:
                    yield from line.assets

    def asset(self, path: str) -> Asset:
        """The asset at ``enterprise/site/line/asset``; KeyError if unknown."""
        if not self._by_path:
            self._by_path.update({a.path: a for a in self.assets()})
        return self._by_path[path]

    def enterprise(self, enterprise_id: str) -> Enterprise:
        for e in self.enterprises:
            if e.id == enterprise_id:
                return e
        raise KeyError(enterprise_id)

    def kilns(self) -> list[Kiln]:
        return [a for a in self.assets() if isinstance(a, Kiln)]

    def presses(self) -> list[Press]:
        return [a for a in self.assets() if isinstance(a, Press)]


def _id(t: Table, name: str = "id") -> str:
    value = t.str(name)
    if not ID_PATTERN.match(value):
        raise t.error(
            name, f"expected a lower-case id of letters, digits, '-', '_' or '.', got {value!r}"
        )
    return value


def _unique(t: Table, key: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise t.error(key, f"ids must be unique, {i!r} appears twice")
        seen.add(i)


def _asset(t: Table, parent: str) -> Asset:
    kind_of = t.str("type", choices=("kiln", "press"))
    aid = _id(t)
    path = f"{parent}/{aid}"
    name = t.str("name", "")
    if kind_of == "kiln":
        t.check_keys(
            "id", "type", "name", "kind", "zones", "thermocouples_per_zone", "max_temperature_c",
            "nameplate_cars_per_hour", "length_m", "fuel",
        )  # fmt: skip
        kind = t.str("kind", choices=("shuttle", "tunnel"))
        rate = t.float("nameplate_cars_per_hour", None, min=0.0)
        if kind == "tunnel" and rate is None:
            raise t.error("nameplate_cars_per_hour", "required for a tunnel kiln (rate-based OEE)")
        return Kiln(
            id=aid,
            path=path,
            kind=kind,
            zones=t.int("zones", min=1, max=64),
            thermocouples_per_zone=t.int("thermocouples_per_zone", 1, min=1, max=16),
            name=name,
            max_temperature_c=t.float("max_temperature_c", 1400.0, min=100.0, max=2000.0),
            nameplate_cars_per_hour=rate,
            length_m=t.float("length_m", None, min=1.0),
            fuel=t.str("fuel", "gas", choices=("gas", "electric", "oil", "coal")),
        )
    t.check_keys("id", "type", "name", "kind", "ideal_cycle_time_s")
    return Press(
        id=aid,
        path=path,
        kind=t.str("kind", choices=("isostatic", "extruder", "plastic")),
        ideal_cycle_time_s=t.float("ideal_cycle_time_s", min=0.001),
        name=name,
    )


def _model(root: Table) -> PlantModel:
    root.check_keys("enterprise")
    enterprises = []
    for et in root.tables("enterprise", required=True):
        et.check_keys("id", "name", "key", "site")
        eid = _id(et)
        sites = []
        for st in et.tables("site", required=True):
            st.check_keys("id", "name", "line")
            sid = _id(st)
            lines = []
            for lt in st.tables("line", required=True):
                lt.check_keys("id", "name", "asset")
                lid = _id(lt)
                lpath = f"{eid}/{sid}/{lid}"
                assets = tuple(_asset(at, lpath) for at in lt.tables("asset"))
                _unique(lt, "asset", [a.id for a in assets])
                lines.append(Line(lid, lpath, lt.str("name", lid), assets))
            _unique(st, "line", [ln.id for ln in lines])
            sites.append(Site(sid, f"{eid}/{sid}", st.str("name", sid), tuple(lines)))
        _unique(et, "site", [s.id for s in sites])
        enterprises.append(
            Enterprise(eid, et.str("name", eid), et.bool("key", False), tuple(sites))
        )
    _unique(root, "enterprise", [e.id for e in enterprises])
    return PlantModel(tuple(enterprises), root.file)


def load_plant(path: str | Path = BUILTIN_SHANGBU) -> PlantModel:
    """Load and validate a plant model file; raises :class:`ConfigError` naming file and key."""
    return _model(load_toml(path))


def parse_plant(text: str, name: str = "<string>") -> PlantModel:
    return _model(parse_toml(text, name))


__all__ = [
    "Asset", "ConfigError", "Enterprise", "Kiln", "Line", "PlantModel", "Press", "Site",
    "load_plant", "parse_plant", "thermocouple_field",
]  # fmt: skip
