"""The town overview: key enterprises side by side (town official, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, Role
from api.deps import ClockDep, MetaDep, PlantDep, SettingsDep, StoreDep, require_roles
from api.problems import Problem
from api.schemas.town import TownOverview
from api.services.town import town_overview

router = APIRouter(tags=["town"])

TownDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.TOWN))]


@router.get("/town/overview", summary="Key enterprises side by side (OEE, conformance, ...)")
def overview(
    _: TownDep,
    store: StoreDep,
    meta: MetaDep,
    plant: PlantDep,
    clock: ClockDep,
    settings: SettingsDep,
    hours: Annotated[float, Query(gt=0, le=24 * 93, description="window ending now")] = 24.0,
) -> TownOverview:
    now = clock()
    start = now - int(hours * 3600 * 10**9)
    if start < 0:
        raise Problem(422, "Invalid request", "window starts before 1970", kind="invalid-request")
    return town_overview(store, meta, plant, settings, now_ns=now, start_ns=start, end_ns=now)
