"""Alarms: list (own enterprise), acknowledge, evaluate now (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import Role, may_see_raw, visible_enterprises
from api.deps import AdminDep, ClockDep, CtxDep, MetaDep, PlantDep, PlantUserDep
from api.metadata.store import AlarmRow
from api.problems import Problem
from api.schemas.alarms import AlarmPublic, EvaluationResult
from api.services.alarms import evaluate_alarms

router = APIRouter(tags=["alarms"])


def _public(a: AlarmRow) -> AlarmPublic:
    return AlarmPublic(
        id=a.id,
        enterprise=a.enterprise,
        asset=a.asset,
        kind=a.kind,
        subject=a.subject,
        severity=a.severity,
        message=a.message,
        start_ns=a.start_ns,
        last_ns=a.last_ns,
        end_ns=a.end_ns,
        acked_ns=a.acked_ns,
        acked_by=a.acked_by,
        active=a.end_ns is None,
    )


@router.get("/alarms", summary="Alarms of the caller's enterprise (admin: all), newest first")
def list_alarms(
    principal: PlantUserDep,
    meta: MetaDep,
    plant: PlantDep,
    enterprise: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")] = None,
    asset: Annotated[
        str | None, Query(max_length=300, description="enterprise/site/line/asset")
    ] = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlarmPublic]:
    ids = visible_enterprises(principal, plant)
    if enterprise is not None:
        if not may_see_raw(principal, enterprise):
            raise Problem(
                403, "Forbidden", f"may not see enterprise {enterprise!r}", kind="forbidden"
            )
        ids = [enterprise]
    if asset is not None and asset.split("/", 1)[0] not in ids:
        raise Problem(403, "Forbidden", f"may not see asset {asset!r}", kind="forbidden")
    rows = meta.alarms(enterprises=ids, asset=asset, active_only=active, limit=limit)
    return [_public(a) for a in rows]


@router.post("/alarms/{alarm_id}/ack", summary="Acknowledge an alarm (engineer, manager, admin)")
def acknowledge(
    alarm_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: PlantUserDep,
    meta: MetaDep,
    clock: ClockDep,
) -> AlarmPublic:
    alarm = meta.alarm(alarm_id)
    # Someone else's alarm is answered like a missing one: its id says nothing.
    if alarm is None or not may_see_raw(principal, alarm.enterprise):
        raise Problem(404, "Not found", f"no alarm {alarm_id}")
    acked = meta.ack_alarm(alarm_id, principal.label, clock())
    assert acked is not None
    return _public(acked)


@router.post("/alarms/evaluate", summary="Evaluate alarm conditions now (admin)")
def evaluate(_: AdminDep, ctx: CtxDep) -> EvaluationResult:
    return EvaluationResult(conditions_holding=evaluate_alarms(ctx))


__all__ = ["Role", "router"]
