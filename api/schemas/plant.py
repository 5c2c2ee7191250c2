"""Plant model bodies."""

from __future__ import annotations

from pydantic import BaseModel


class AssetPublic(BaseModel):
    """An asset with its connection status."""

    id: str
    path: str
    type: str  # kiln | press
    kind: str
    name: str
    connected: bool
    last_seen_ns: int | None
    zones: int | None = None
    thermocouples_per_zone: int | None = None
    ideal_cycle_time_s: float | None = None
    nameplate_cars_per_hour: float | None = None


class LinePublic(BaseModel):
    """A line and its assets."""

    id: str
    path: str
    name: str
    assets: list[AssetPublic]


class SitePublic(BaseModel):
    """A site and its lines."""

    id: str
    path: str
    name: str
    lines: list[LinePublic]


class EnterprisePublic(BaseModel):
    """An enterprise with its sites (empty for a town official: structure is not shared)."""

    id: str
    name: str
    key: bool
    assets_total: int
    assets_connected: int
    last_seen_ns: int | None
    sites: list[SitePublic]


class PlantPublic(BaseModel):
    """The part of the plant model the caller may see."""

    enterprises: list[EnterprisePublic]
    now_ns: int
