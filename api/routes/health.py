"""Liveness: no authentication, no data (load balancers and the demo poll it)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ClockDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API is up."""

    status: str
    now_ns: int


@router.get("/health", summary="Liveness (no token needed)")
def health(clock: ClockDep) -> Health:
    return Health(status="ok", now_ns=clock())
