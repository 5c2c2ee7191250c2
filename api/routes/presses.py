"""State timeline of an asset (press or kiln), for the press / line view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AssetDep, ClockDep, PlantUserDep, StoreDep
from api.problems import Problem
from api.schemas.oee import StateSpan, StateTimelinePublic
from api.services.timeline import state_changes
from core.plant import Kiln

router = APIRouter(tags=["live"])


@router.get(
    "/assets/{enterprise}/{site}/{line}/{asset}/states",
    summary="State timeline of an asset (machine states with reasons)",
)
def states(
    _: PlantUserDep,
    asset: AssetDep,
    store: StoreDep,
    clock: ClockDep,
    start_ns: Annotated[int | None, Query(ge=0, description="default: end - 24 h")] = None,
    end_ns: Annotated[int | None, Query(ge=0, description="default: now")] = None,
) -> StateTimelinePublic:
    end = clock() if end_ns is None else end_ns
    start = max(0, end - 24 * 3600 * 10**9) if start_ns is None else start_ns
    if end <= start or end - start > 31 * 86400 * 10**9:
        raise Problem(
            422,
            "Invalid request",
            "need start_ns < end_ns, at most 31 days apart",
            kind="invalid-request",
        )
    ch = state_changes(store, asset.path, start, end, kiln=isinstance(asset, Kiln))
    spans = []
    times = [*ch.start_ns.tolist(), end]
    for i in range(len(ch.state)):
        a, b = max(times[i], start), min(times[i + 1], end)
        if b > a:
            label = ch.raw[i] if isinstance(asset, Kiln) else ch.state[i]
            spans.append(StateSpan(state=label, reason=ch.reason[i], start_ns=a, end_ns=b))
    return StateTimelinePublic(asset=asset.path, start_ns=start, end_ns=end, spans=spans)
