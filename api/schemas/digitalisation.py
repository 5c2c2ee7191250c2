"""Digitalisation progress bodies (GB/T 39116-2020 self-assessment + measured indicators)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AssessmentCreate(BaseModel):
    """A GB/T 39116 self-assessment an enterprise submits: a level 1..5 per element."""

    personnel: float = Field(ge=1, le=5)
    technology: float = Field(ge=1, le=5)
    resources: float = Field(ge=1, le=5)
    manufacturing: float = Field(ge=1, le=5)
    note: str = Field("", max_length=2000)


class AssessmentPublic(AssessmentCreate):
    """A recorded self-assessment."""

    id: int
    enterprise: str
    submitted_ns: int
    submitted_by: str


class ProgressPoint(BaseModel):
    """The enterprise's progress over one period (analytics.digitalisation.ProgressRecord)."""

    start_ns: int
    end_ns: int
    indicators: dict[str, float | None]  # connected, completeness, timeliness, conformance, ...
    measured_index: float | None
    assessed_level: float | None
    assessed_level_name: str | None
    progress_index: float | None  # 0..100
    delta_index: float | None
    gap: float | None
    evidence_level: float | None
    notes: list[str]
    observations: dict[str, Any]


class ProgressPublic(BaseModel):
    """An enterprise's digitalisation progress record over time."""

    enterprise: str
    period: str  # day | week
    points: list[ProgressPoint]
    assessments: list[AssessmentPublic]
