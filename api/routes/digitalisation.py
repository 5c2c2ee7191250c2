"""Digitalisation progress of an enterprise over time; submitting a self-assessment."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.auth import Role
from api.deps import (
    ClockDep,
    EnterpriseAggregateDep,
    EnterpriseRawDep,
    MetaDep,
    PlantDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
)
from api.metadata.store import AssessmentRow
from api.problems import Problem
from api.schemas.digitalisation import (
    AssessmentCreate,
    AssessmentPublic,
    ProgressPoint,
    ProgressPublic,
)
from api.services.digitalisation import enterprise_progress

router = APIRouter(tags=["digitalisation"])

BASE = "/enterprises/{enterprise}/digitalisation"


def _assessment(r: AssessmentRow) -> AssessmentPublic:
    return AssessmentPublic(
        id=r.id,
        enterprise=r.enterprise,
        submitted_ns=r.submitted_ns,
        submitted_by=r.submitted_by,
        note=r.note,
        **r.levels,
    )


@router.get(BASE, summary="Digitalisation progress of an enterprise over time")
def get_progress(
    enterprise: EnterpriseAggregateDep,
    store: StoreDep,
    meta: MetaDep,
    plant: PlantDep,
    clock: ClockDep,
    settings: SettingsDep,
    period: Literal["day", "week"] = "week",
    periods: Annotated[int, Query(ge=1, le=104)] = 8,
) -> ProgressPublic:
    rows = enterprise_progress(
        store,
        meta,
        plant,
        enterprise,
        now_ns=clock(),
        period=period,
        periods=periods,
        expected_interval_s=settings.expected_sample_interval_s,
        silent_after_s=settings.silent_after_s,
    )
    points = []
    for start, end, rec in rows:
        d = rec.to_dict()
        points.append(
            ProgressPoint(
                start_ns=start,
                end_ns=end,
                indicators=d["indicators"],
                measured_index=d["measured_index"],
                assessed_level=d["assessed_level"],
                assessed_level_name=d["assessed_level_name"],
                progress_index=d["progress_index"],
                delta_index=d["delta_index"],
                gap=d["gap"],
                evidence_level=d["evidence_level"],
                notes=d["notes"],
                observations=d["observations"],
            )
        )
    return ProgressPublic(
        enterprise=enterprise.id,
        period=period,
        points=points,
        assessments=[_assessment(r) for r in meta.assessments(enterprise.id)],
    )


@router.post(
    BASE + "/assessments",
    status_code=201,
    summary="Submit a GB/T 39116 self-assessment (manager of the enterprise, admin)",
)
def submit(
    body: AssessmentCreate,
    enterprise: EnterpriseRawDep,
    principal: PrincipalDep,
    meta: MetaDep,
    clock: ClockDep,
) -> AssessmentPublic:
    if principal.role not in (Role.ADMIN, Role.MANAGER):
        raise Problem(
            403,
            "Forbidden",
            "only a manager of the enterprise submits its assessment",
            kind="forbidden",
        )
    levels = body.model_dump(exclude={"note"})
    row = meta.add_assessment(enterprise.id, clock(), principal.label, levels, body.note)
    return _assessment(row)
