"""OEE and state-timeline bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class StateSpan(BaseModel):
    """A machine state held from ``start_ns`` to ``end_ns``."""

    state: str
    reason: str
    start_ns: int
    end_ns: int


class StateTimelinePublic(BaseModel):
    """State timeline of an asset over a window (for the press/line view)."""

    asset: str
    start_ns: int
    end_ns: int
    spans: list[StateSpan]


class OeePeriod(BaseModel):
    """OEE of one scope over one period (a shift instance, a local day, or the window)."""

    scope: str  # asset path, "e/s/l", "e/s", "e", or "" for the town
    period: str  # "2026-11-25/A", "2026-11-25", or "" for the whole window
    start_ns: int
    end_ns: int
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    losses_s: dict[str, float | None]  # six big losses, s of planned busy time (None: unknown)
    downtime_by_reason_s: dict[str, float]
    produced: float
    good: float
    rejected: float
    unit: str
    undefined: dict[str, str]  # ratio name -> why it cannot be computed (no planned time...)
    detail: dict[str, Any]  # every ISO 22400-2 element, from the analytics core


class OeePublic(BaseModel):
    """OEE per period for a scope."""

    scope: str
    level: str  # asset | line | site | enterprise | town
    bucket: str  # shift | day | window
    start_ns: int
    end_ns: int
    periods: list[OeePeriod]
    total: OeePeriod
    problems: list[str]
