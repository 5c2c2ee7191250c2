"""``Annotated[..., Depends()]`` aliases the routes take as typed parameters.

Dependencies that do no I/O are ``async def`` on purpose: FastAPI runs a sync dependency in
the thread pool, and a dozen thread hops per request cost more than the request's own work.

Tests swap collaborators with ``app.dependency_overrides`` or by injecting them into
``create_app``. Access checks live here so that a route cannot forget one: a route that takes
``KilnDep`` gets a kiln the caller may see raw data of, or the request ends in 401/403/404.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Role, may_see_aggregate, may_see_raw
from api.context import AppContext, Clock
from api.metadata.store import MetadataStore
from api.problems import Problem
from api.services.oee_cache import OeeCache
from api.settings import Settings
from core.plant import Asset, Enterprise, Kiln, PlantModel, Press
from ingest.contracts import Store

_bearer = HTTPBearer(
    auto_error=False, description="kw_... token from `kilnworks serve create-token`"
)

PATH_ID = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


async def get_store(ctx: CtxDep) -> Store:
    return ctx.store


async def get_meta(ctx: CtxDep) -> MetadataStore:
    return ctx.meta


async def get_plant(ctx: CtxDep) -> PlantModel:
    return ctx.plant


async def get_clock(ctx: CtxDep) -> Clock:
    return ctx.clock


async def get_settings(ctx: CtxDep) -> Settings:
    return ctx.settings


async def get_oee_cache(ctx: CtxDep) -> OeeCache | None:
    return ctx.oee_cache


StoreDep = Annotated[Store, Depends(get_store)]
MetaDep = Annotated[MetadataStore, Depends(get_meta)]
PlantDep = Annotated[PlantModel, Depends(get_plant)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# Per-asset OEE results; consult it only after the caller's access to the scope is checked.
OeeCacheDep = Annotated[OeeCache | None, Depends(get_oee_cache)]


def current_principal(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 without a valid bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>")
    principal = ctx.tokens.authenticate(ctx.meta, credentials.credentials, time.monotonic_ns())
    if principal is None:
        raise Problem(401, "Unauthorized", "the token is unknown, malformed or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that admits only ``roles`` (403 otherwise)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Problem(
                403, "Forbidden", f"role {principal.role} may not do this", kind="forbidden"
            )
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
# Roles that may see raw data of (their own) enterprise.
PlantUserDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.ENGINEER))]

EnterpriseId = Annotated[str, Path(pattern=PATH_ID, description="enterprise id")]
SiteId = Annotated[str, Path(pattern=PATH_ID, description="site id")]
LineId = Annotated[str, Path(pattern=PATH_ID, description="line id")]
AssetId = Annotated[str, Path(pattern=PATH_ID, description="asset id")]


def _forbidden(principal: Principal, enterprise: str) -> Problem:
    return Problem(
        403,
        "Forbidden",
        f"{principal.role} token may not see enterprise {enterprise!r}",
        kind="forbidden",
    )


async def enterprise_raw(
    enterprise: EnterpriseId, principal: PrincipalDep, plant: PlantDep
) -> Enterprise:
    """An enterprise whose raw data the caller may see."""
    if not may_see_raw(principal, enterprise):
        raise _forbidden(principal, enterprise)
    try:
        return plant.enterprise(enterprise)
    except KeyError:
        raise Problem(404, "Not found", f"no enterprise {enterprise!r}") from None


async def enterprise_aggregate(
    enterprise: EnterpriseId, principal: PrincipalDep, plant: PlantDep
) -> Enterprise:
    """An enterprise whose aggregates the caller may see (town official: key ones only)."""
    if not may_see_aggregate(principal, enterprise, plant):
        raise _forbidden(principal, enterprise)
    try:
        return plant.enterprise(enterprise)
    except KeyError:
        raise Problem(404, "Not found", f"no enterprise {enterprise!r}") from None


EnterpriseRawDep = Annotated[Enterprise, Depends(enterprise_raw)]
EnterpriseAggregateDep = Annotated[Enterprise, Depends(enterprise_aggregate)]


async def asset_raw(
    enterprise: EnterpriseRawDep, site: SiteId, line: LineId, asset: AssetId, plant: PlantDep
) -> Asset:
    path = f"{enterprise.id}/{site}/{line}/{asset}"
    try:
        return plant.asset(path)
    except KeyError:
        raise Problem(404, "Not found", f"no asset {path!r} in the plant model") from None


AssetDep = Annotated[Asset, Depends(asset_raw)]


async def kiln_raw(asset: AssetDep) -> Kiln:
    if not isinstance(asset, Kiln):
        raise Problem(404, "Not found", f"{asset.path} is a {asset.type}, not a kiln")
    return asset


async def press_raw(asset: AssetDep) -> Press:
    if not isinstance(asset, Press):
        raise Problem(404, "Not found", f"{asset.path} is a {asset.type}, not a press")
    return asset


KilnDep = Annotated[Kiln, Depends(kiln_raw)]
PressDep = Annotated[Press, Depends(press_raw)]
