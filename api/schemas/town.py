"""Town overview bodies."""

from __future__ import annotations

from pydantic import BaseModel


class EnterpriseSummary(BaseModel):
    """One key enterprise, in aggregates only (what a town official may see)."""

    enterprise: str
    name: str
    oee: float | None  # over the window, time-weighted across its assets
    availability: float | None
    performance: float | None
    quality: float | None
    firings: int  # firings that ended in the window
    conformance_mean: float | None  # mean score of those firings, 0..1
    energy_kwh_per_t: float | None  # firing energy / fired mass, where both are metered
    digitalisation_index: float | None  # 0..100, analytics.digitalisation
    assets_total: int
    assets_connected: int
    last_seen_ns: int | None
    data_age_s: float | None  # now - newest reading of any asset


class TownOverview(BaseModel):
    """The key enterprises side by side."""

    start_ns: int
    end_ns: int
    enterprises: list[EnterpriseSummary]
    town_oee: float | None  # roll-up over every key enterprise's assets
