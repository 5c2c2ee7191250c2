"""The plant model: enterprises, sites, lines, assets, with connected / last seen."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Principal, Role, visible_enterprises
from api.deps import ClockDep, EnterpriseAggregateDep, PlantDep, PrincipalDep, SettingsDep, StoreDep
from api.schemas.plant import (
    AssetPublic,
    EnterprisePublic,
    LinePublic,
    PlantPublic,
    SitePublic,
)
from api.services.status import asset_status
from core.plant import Enterprise, Kiln

router = APIRouter(tags=["plant"])


def _enterprise(
    e: Enterprise, principal: Principal, store, now_ns: int, silent_after_s: float
) -> EnterprisePublic:
    sites: list[SitePublic] = []
    total = connected = 0
    last_seen: int | None = None
    for s in e.sites:
        lines = []
        for ln in s.lines:
            assets = []
            for a in ln.assets:
                st = asset_status(store, a.path, now_ns, silent_after_s)
                total += 1
                connected += st.connected
                if st.last_seen_ns is not None:
                    last_seen = max(last_seen or 0, st.last_seen_ns)
                extra = (
                    {
                        "zones": a.zones,
                        "thermocouples_per_zone": a.thermocouples_per_zone,
                        "nameplate_cars_per_hour": a.nameplate_cars_per_hour,
                    }
                    if isinstance(a, Kiln)
                    else {"ideal_cycle_time_s": a.ideal_cycle_time_s}
                )
                assets.append(
                    AssetPublic(
                        id=a.id,
                        path=a.path,
                        type=a.type,
                        kind=a.kind,
                        name=a.name or a.id,
                        connected=st.connected,
                        last_seen_ns=st.last_seen_ns,
                        **extra,
                    )
                )
            lines.append(LinePublic(id=ln.id, path=ln.path, name=ln.name, assets=assets))
        sites.append(SitePublic(id=s.id, path=s.path, name=s.name, lines=lines))
    # A town official sees how connected an enterprise is, not its equipment list.
    if principal.role is Role.TOWN:
        sites = []
    return EnterprisePublic(
        id=e.id,
        name=e.name,
        key=e.key,
        assets_total=total,
        assets_connected=connected,
        last_seen_ns=last_seen,
        sites=sites,
    )


@router.get("/plant", summary="The plant model the caller may see, with connection status")
def get_plant(
    principal: PrincipalDep,
    plant: PlantDep,
    store: StoreDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> PlantPublic:
    now = clock()
    ids = set(visible_enterprises(principal, plant))
    return PlantPublic(
        enterprises=[
            _enterprise(e, principal, store, now, settings.silent_after_s)
            for e in plant.enterprises
            if e.id in ids
        ],
        now_ns=now,
    )


@router.get("/plant/{enterprise}", summary="One enterprise of the plant model")
def get_enterprise(
    enterprise: EnterpriseAggregateDep,
    principal: PrincipalDep,
    store: StoreDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> EnterprisePublic:
    return _enterprise(enterprise, principal, store, clock(), settings.silent_after_s)
