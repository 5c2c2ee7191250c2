"""The town overview: key enterprises side by side (town official, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, Role
from api.deps import (
    ClockDep,
    MetaDep,
    OeeCacheDep,
    PlantDep,
    SettingsDep,
    StoreDep,
    require_roles,
)
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
    cache: OeeCacheDep,
    hours: Annotated[
        float,
        Query(gt=0, le=24 * 93, description="window ending now (rounded down to 5 s)"),
    ] = 24.0,
) -> TownOverview:
    now = clock()
    # The window ends "now" on a step of oee_cache_live_s, so pollers share cached OEE; data
    # freshness is still measured against the exact now.
    end = cache.live_end(now) if cache is not None else now
    start = end - int(hours * 3600 * 10**9)
    if start < 0:
        raise Problem(422, "Invalid request", "window starts before 1970", kind="invalid-request")
    return town_overview(
        store, meta, plant, settings, now_ns=now, start_ns=start, end_ns=end, cache=cache
    )
