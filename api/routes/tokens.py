"""API tokens (admin only): create, list, revoke. The token text is returned once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.auth import ENTERPRISE_ROLES, Role, issue_token
from api.deps import AdminDep, ClockDep, CtxDep, MetaDep, PlantDep, PrincipalDep
from api.problems import Problem

router = APIRouter(tags=["tokens"])


class TokenCreate(BaseModel):
    """What an admin sends to create a token."""

    name: str = Field(min_length=1, max_length=200)
    role: Role
    enterprise: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class TokenPublic(BaseModel):
    """A token as listed (never the secret)."""

    id: str
    name: str
    role: Role
    enterprise: str | None
    created_ns: int
    revoked: bool


class TokenCreated(TokenPublic):
    """A new token: ``token`` is shown this once."""

    token: str


class Me(BaseModel):
    """Who the presented token belongs to."""

    token_id: str
    name: str
    role: Role
    enterprise: str | None


@router.get("/me", summary="Who am I (the token's role and enterprise)")
def me(principal: PrincipalDep) -> Me:
    return Me(
        token_id=principal.token_id,
        name=principal.name,
        role=principal.role,
        enterprise=principal.enterprise,
    )


@router.post("/tokens", status_code=201, summary="Create a token (admin)")
def create(
    body: TokenCreate, _: AdminDep, meta: MetaDep, plant: PlantDep, clock: ClockDep
) -> TokenCreated:
    if body.role in ENTERPRISE_ROLES:
        try:
            plant.enterprise(body.enterprise or "")
        except KeyError:
            raise Problem(
                422,
                "Invalid request",
                f"{body.role} needs an existing enterprise",
                kind="invalid-request",
            ) from None
    try:
        token, row = issue_token(
            meta, name=body.name, role=body.role, enterprise=body.enterprise, now_ns=clock()
        )
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), kind="invalid-request") from None
    return TokenCreated(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        enterprise=row.enterprise,
        created_ns=row.created_ns,
        revoked=row.revoked,
        token=token,
    )


@router.get("/tokens", summary="List tokens (admin)")
def list_tokens(_: AdminDep, meta: MetaDep) -> list[TokenPublic]:
    return [
        TokenPublic(
            id=r.id,
            name=r.name,
            role=Role(r.role),
            enterprise=r.enterprise,
            created_ns=r.created_ns,
            revoked=r.revoked,
        )
        for r in meta.tokens()
    ]


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token (admin)")
def revoke(
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")], _: AdminDep, ctx: CtxDep
) -> None:
    if not ctx.meta.revoke_token(token_id):
        raise Problem(404, "Not found", f"no token {token_id!r}")
    ctx.tokens.clear()  # a revoked token must stop working now, not when its cache entry expires
