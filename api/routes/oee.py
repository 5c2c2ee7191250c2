"""OEE per asset, line, site, enterprise or the town; per shift, per day or over the window."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from analytics.oee_result import OeeResult
from api.auth import Principal, Role, may_see_aggregate, may_see_raw
from api.deps import (
    ClockDep,
    MetaDep,
    OeeCacheDep,
    PlantDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
)
from api.problems import Problem
from api.schemas.oee import OeePeriod, OeePublic
from api.services.oee import Reasons, assets_under, scope_oee, shift_calendar
from core.plant import PlantModel

router = APIRouter(tags=["oee"])

LEVELS = {0: "town", 1: "enterprise", 2: "site", 3: "line", 4: "asset"}
MAX_WINDOW_NS = 93 * 86400 * 10**9


def period_public(r: OeeResult, reasons: Reasons) -> OeePeriod:
    """An analytics OeeResult as the API shows it."""
    d = r.to_dict()
    ratios = d["ratios"]
    return OeePeriod(
        scope=r.scope,
        period=r.period,
        start_ns=r.window_start_ns,
        end_ns=r.window_end_ns,
        availability=ratios["availability"],
        performance=ratios["performance"],
        quality=ratios["quality"],
        oee=ratios["oee"],
        losses_s=d["losses"],
        downtime_by_reason_s={
            reasons.text(x["reason"]): x["seconds"] for x in d["downtime_by_reason"]
        },
        produced=r.produced,
        good=r.good,
        rejected=r.rejected,
        unit=r.unit,
        undefined=d["undefined"],
        detail={
            k: d[k]
            for k in ("elements_s", "ratios", "stop_count", "microstop_count", "graded", "parts")
            if k in d
        },
    )


def check_scope(principal: Principal, plant: PlantModel, scope: str) -> str:
    """The scope's level if the caller may see it (403/404 otherwise)."""
    parts = scope.split("/") if scope else []
    level = LEVELS.get(len(parts))
    if level is None:
        raise Problem(
            422,
            "Invalid request",
            "scope is '', enterprise, e/site, e/s/line or e/s/l/asset",
            kind="invalid-request",
        )
    if level == "town":
        if principal.role not in (Role.ADMIN, Role.TOWN):
            raise Problem(
                403, "Forbidden", "the town aggregate is for town officials", kind="forbidden"
            )
        return level
    enterprise = parts[0]
    allowed = (
        may_see_aggregate(principal, enterprise, plant)
        if level == "enterprise"
        else may_see_raw(principal, enterprise)
    )
    if not allowed:
        raise Problem(
            403,
            "Forbidden",
            f"{principal.role} may not see {level} OEE of {scope!r}",
            kind="forbidden",
        )
    if not assets_under(plant, scope):
        raise Problem(404, "Not found", f"no assets under {scope!r} in the plant model")
    return level


@router.get("/oee", summary="OEE with the six-loss breakdown, per shift or day, for a scope")
def get_oee(
    principal: PrincipalDep,
    plant: PlantDep,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
    cache: OeeCacheDep,
    scope: Annotated[
        str,
        Query(
            max_length=300,
            pattern=r"^$|^[a-z0-9][a-z0-9_./-]{0,299}$",
            description="'' (town), e, e/s, e/s/l or e/s/l/asset",
        ),
    ] = "",
    bucket: Literal["shift", "day", "window"] = "shift",
    start_ns: Annotated[int | None, Query(ge=0, description="default: end - 24 h")] = None,
    end_ns: Annotated[
        int | None,
        Query(ge=0, description="default: now, rounded down to oee_cache_live_s (5 s)"),
    ] = None,
) -> OeePublic:
    level = check_scope(principal, plant, scope)  # before the cache is consulted
    if end_ns is not None:
        end = end_ns
    else:  # "now", on a step of a few seconds so that pollers share cached results
        end = cache.live_end(clock()) if cache is not None else clock()
    start = max(0, end - 86400 * 10**9) if start_ns is None else start_ns
    if end <= start or end - start > MAX_WINDOW_NS:
        raise Problem(
            422,
            "Invalid request",
            "need start_ns < end_ns, at most 93 days apart",
            kind="invalid-request",
        )
    periods, total, problems, reasons = scope_oee(
        store,
        meta,
        assets_under(plant, scope),
        scope,
        start,
        end,
        bucket,
        shift_calendar(settings.shifts_path),
        settings,
        cache,
    )
    return OeePublic(
        scope=scope,
        level=level,
        bucket=bucket,
        start_ns=start,
        end_ns=end,
        periods=[period_public(p, reasons) for p in periods],
        total=period_public(total, reasons),
        problems=problems,
    )
