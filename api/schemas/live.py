"""Live values and series bodies."""

from __future__ import annotations

from pydantic import BaseModel


class LatestValue(BaseModel):
    """The most recent reading of one field."""

    value: float | int | bool | str
    quality: int  # 0 good, 1 uncertain, 2 bad
    source_time_ns: int
    unit: str = ""


class LatestPublic(BaseModel):
    """Latest values of every field of an asset."""

    asset: str
    now_ns: int
    connected: bool
    last_seen_ns: int | None
    fields: dict[str, LatestValue]


class SeriesPublic(BaseModel):
    """One field over time, downsampled (time of each window's start)."""

    asset: str
    field: str
    aggregate: str
    window_s: float | None
    time_ns: list[int]
    values: list[float | str | None]
    quality: list[int]
