"""Alarm bodies."""

from __future__ import annotations

from pydantic import BaseModel


class AlarmPublic(BaseModel):
    """An alarm: active while ``end_ns`` is null."""

    id: int
    enterprise: str
    asset: str
    kind: str  # deviation | stall | broken_thermocouple | silent
    subject: str
    severity: str
    message: str
    start_ns: int
    last_ns: int
    end_ns: int | None
    acked_ns: int | None
    acked_by: str | None
    active: bool


class EvaluationResult(BaseModel):
    """Outcome of an on-demand alarm evaluation pass."""

    conditions_holding: int
