"""Firings of a kiln: list, conformance report, curve, events, and posting the grading."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ClockDep, KilnDep, MetaDep, PlantUserDep, SettingsDep, StoreDep
from api.metadata.store import FiringRow, GradingRow, MetadataStore
from api.problems import Problem
from api.schemas.firings import (
    FiringCurve,
    FiringEvent,
    FiringPublic,
    FiringReportPublic,
    GradingCreate,
    GradingPublic,
)
from api.services import conformance
from api.services.firings import sync_firings
from core.plant import Kiln

router = APIRouter(tags=["firings"])

BASE = "/kilns/{enterprise}/{site}/{line}/{asset}/firings"
FiringId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")]


def _grading(g: GradingRow | None) -> GradingPublic | None:
    if g is None:
        return None
    return GradingPublic(
        good_count=g.good_count,
        reject_count=g.reject_count,
        reject_reasons=g.reject_reasons,
        fired_mass_kg=g.fired_mass_kg,
        graded_ns=g.graded_ns,
        graded_by=g.graded_by,
    )


def _public(f: FiringRow, g: GradingRow | None) -> FiringPublic:
    return FiringPublic(
        asset=f.asset,
        firing_id=f.firing_id,
        programme=f.programme,
        start_ns=f.start_ns,
        end_ns=f.end_ns,
        state=f.state,
        conformance_score=f.conformance_score,
        grading=_grading(g),
    )


def _firing(
    store: StoreDep, meta: MetadataStore, kiln: Kiln, firing_id: str, now: int, lookback_s: float
) -> FiringRow:
    f = meta.firing(kiln.path, firing_id)
    if f is None or f.end_ns is None:  # unknown or still running: look at the telemetry again
        sync_firings(store, meta, kiln, now - int(lookback_s * 1e9), now + 1)
        f = meta.firing(kiln.path, firing_id)
    if f is None:
        raise Problem(404, "Not found", f"no firing {firing_id!r} on {kiln.path}")
    return f


@router.get(BASE, summary="Firings of a kiln overlapping a window, newest first")
def list_firings(
    _: PlantUserDep,
    kiln: KilnDep,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
    start_ns: Annotated[int | None, Query(ge=0, description="default: 14 days before end")] = None,
    end_ns: Annotated[int | None, Query(ge=0, description="default: now")] = None,
) -> list[FiringPublic]:
    end = clock() + 1 if end_ns is None else end_ns
    start = max(0, end - int(settings.firing_lookback_s * 1e9)) if start_ns is None else start_ns
    if end <= start:
        raise Problem(
            422, "Invalid request", "end_ns must be after start_ns", kind="invalid-request"
        )
    rows = sync_firings(store, meta, kiln, start, end)
    gradings = {g.firing_id: g for g in meta.gradings(asset=kiln.path)}
    return [_public(f, gradings.get(f.firing_id)) for f in rows]


@router.get(BASE + "/{firing_id}", summary="The conformance report of a firing")
def report(
    _: PlantUserDep,
    kiln: KilnDep,
    firing_id: FiringId,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> FiringReportPublic:
    now = clock()
    f = _firing(store, meta, kiln, firing_id, now, settings.firing_lookback_s)
    r = conformance.firing_report(store, kiln, f, now_ns=now, tolerance_c=settings.tolerance_c)
    if f.end_ns is not None and r.score is not None and f.conformance_score != r.score:
        meta.upsert_firing(_with_score(f, r.score, r.energy_kwh))
        f = meta.firing(kiln.path, firing_id) or f
    return FiringReportPublic(
        firing=_public(f, meta.grading(kiln.path, firing_id)),
        programme=r.programme,
        tolerance_c=r.tolerance_c,
        score=r.score,
        summary=r.summary,
        thermocouples=r.thermocouples,
        segments=r.segments,
        events=[FiringEvent(**e) for e in r.events],
        problems=r.problems,
    )


def _with_score(f: FiringRow, score: float, energy: float | None) -> FiringRow:
    return FiringRow(
        f.asset,
        f.firing_id,
        f.enterprise,
        f.programme,
        f.programme_segments,
        f.start_ns,
        f.end_ns,
        f.state,
        score,
        energy,
    )


@router.get(BASE + "/{firing_id}/events", summary="Excursions and stalls of a firing")
def events(
    _: PlantUserDep,
    kiln: KilnDep,
    firing_id: FiringId,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> list[FiringEvent]:
    now = clock()
    f = _firing(store, meta, kiln, firing_id, now, settings.firing_lookback_s)
    r = conformance.firing_report(store, kiln, f, now_ns=now, tolerance_c=settings.tolerance_c)
    return [FiringEvent(**e) for e in r.events]


@router.get(BASE + "/{firing_id}/curve", summary="Actual vs setpoint of a firing, for a chart")
def curve(
    _: PlantUserDep,
    kiln: KilnDep,
    firing_id: FiringId,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
    points: Annotated[int, Query(ge=10, le=5000)] = 600,
) -> FiringCurve:
    now = clock()
    f = _firing(store, meta, kiln, firing_id, now, settings.firing_lookback_s)
    c = conformance.firing_curve(
        store, kiln, f, now_ns=now, tolerance_c=settings.tolerance_c, points=points
    )
    return FiringCurve(**c)


@router.post(BASE + "/{firing_id}/grading", summary="Record (or replace) the grading of a firing")
def put_grading(
    principal: PlantUserDep,
    kiln: KilnDep,
    firing_id: FiringId,
    body: GradingCreate,
    store: StoreDep,
    meta: MetaDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> GradingPublic:
    if sum(body.reject_reasons.values()) > body.reject_count:
        raise Problem(
            422,
            "Invalid request",
            "reject_reasons add up to more than reject_count",
            kind="invalid-request",
        )
    now = clock()
    f = _firing(store, meta, kiln, firing_id, now, settings.firing_lookback_s)
    row = GradingRow(
        asset=kiln.path,
        firing_id=f.firing_id,
        enterprise=f.enterprise,
        good_count=body.good_count,
        reject_count=body.reject_count,
        reject_reasons=body.reject_reasons,
        fired_mass_kg=body.fired_mass_kg,
        graded_ns=now,
        graded_by=principal.label,
    )
    meta.put_grading(row)
    return _grading(row)  # type: ignore[return-value]
