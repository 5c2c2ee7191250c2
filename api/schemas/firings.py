"""Firing, grading and firing-report bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator


class GradingCreate(BaseModel):
    """The grading result of a firing, as the grading bench posts it."""

    good_count: int = Field(ge=0, le=10_000_000)
    reject_count: int = Field(ge=0, le=10_000_000)
    # reason -> pieces, e.g. {"crack": 3, "black_core": 1}; must add up to reject_count
    reject_reasons: dict[str, int] = Field(default_factory=dict, max_length=50)
    fired_mass_kg: float | None = Field(None, gt=0, le=1e7, description="for energy per tonne")

    @field_validator("reject_reasons")
    @classmethod
    def _reasons(cls, v: dict[str, int]) -> dict[str, int]:
        for reason, count in v.items():
            if not 1 <= len(reason) <= 100:
                raise ValueError("a reason is 1 to 100 characters")
            if count < 0 or count > 10_000_000:
                raise ValueError(f"count of {reason!r} must be in [0, 10000000]")
        return v


class GradingPublic(GradingCreate):
    """A recorded grading."""

    graded_ns: int
    graded_by: str


class FiringPublic(BaseModel):
    """A firing as listed."""

    asset: str
    firing_id: str
    programme: str
    start_ns: int
    end_ns: int | None
    state: str  # running | complete
    conformance_score: float | None
    grading: GradingPublic | None


class FiringEvent(BaseModel):
    """An excursion outside the band, or a stall, during a firing."""

    kind: str  # excursion | stall
    subject: str  # the thermocouple field, or the zone
    start_ns: int
    end_ns: int
    peak_deviation_c: float | None = None
    detail: str = ""


class FiringReportPublic(BaseModel):
    """The conformance report of a firing (analytics core) with its grading."""

    firing: FiringPublic
    programme: dict[str, Any] | None  # the validated programme, None when the kiln sent none
    tolerance_c: float
    score: float | None  # share of judged time inside the band, 0..1
    summary: dict[str, Any]  # kiln-level figures (max/mean/RMS deviation, cone, coverage, ...)
    thermocouples: list[dict[str, Any]]  # per-thermocouple figures
    segments: list[dict[str, Any]]  # per-segment figures (achieved rate, soak held, ...)
    events: list[FiringEvent]
    problems: list[str]  # why parts of the report are missing (no programme, no data, ...)


class FiringCurve(BaseModel):
    """Actual vs setpoint of a firing, downsampled for a chart."""

    asset: str
    firing_id: str
    start_ns: int
    end_ns: int
    tolerance_c: float
    time_ns: list[int]
    setpoint_c: list[float | None]
    thermocouples: dict[str, list[float | None]]  # window means per thermocouple
