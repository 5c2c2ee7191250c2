"""Live data of an asset: latest values, and a field's series downsampled for a chart."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query

from api.deps import AssetDep, ClockDep, PlantUserDep, SettingsDep, StoreDep
from api.problems import Problem
from api.schemas.live import LatestPublic, LatestValue, SeriesPublic
from api.services.status import asset_status

router = APIRouter(tags=["live"])

FIELD_PATTERN = r"^[A-Za-z0-9_.-]{1,120}$"
# The most points one series answer carries: a chart cannot show more than its pixel width,
# and an unbounded answer is a cheap way to make the API (and the store) do a lot of work.
MAX_POINTS = 5000
MAX_SPAN_NS = 400 * 86400 * 10**9

BASE = "/assets/{enterprise}/{site}/{line}/{asset}"


@router.get(BASE + "/latest", summary="Latest value of every field of an asset")
def latest(
    _: PlantUserDep,
    asset: AssetDep,
    store: StoreDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LatestPublic:
    now = clock()
    st = asset_status(store, asset.path, now, settings.silent_after_s)
    return LatestPublic(
        asset=asset.path,
        now_ns=now,
        connected=st.connected,
        last_seen_ns=st.last_seen_ns,
        fields={
            name: LatestValue(
                value=_json_value(r.value),
                quality=int(r.quality),
                source_time_ns=r.source_time_ns,
                unit=r.unit,
            )
            for name, r in sorted(st.latest.items())
        },
    )


def _json_value(v: float | int | bool | str) -> float | int | bool | str:
    # JSON has no NaN/inf; a store should never hold them, but a chart must not break if one does.
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


@router.get(BASE + "/series", summary="One field of an asset over time, downsampled")
def series(
    _: PlantUserDep,
    asset: AssetDep,
    store: StoreDep,
    clock: ClockDep,
    field: Annotated[str, Query(pattern=FIELD_PATTERN, description="field name")],
    start_ns: Annotated[int | None, Query(ge=0, description="default: end - 6 h")] = None,
    end_ns: Annotated[int | None, Query(ge=0, description="default: now")] = None,
    points: Annotated[int, Query(ge=1, le=MAX_POINTS, description="about this many")] = 600,
    resolution_s: Annotated[
        int | None, Query(ge=1, le=86400, description="window length; overrides points")
    ] = None,
    aggregate: Literal["mean", "min", "max", "first", "last", "count", "sum"] = "mean",
) -> SeriesPublic:
    end = clock() if end_ns is None else end_ns
    start = end - 6 * 3600 * 10**9 if start_ns is None else start_ns
    start = max(start, 0)
    if end <= start:
        raise Problem(
            422, "Invalid request", "end_ns must be after start_ns", kind="invalid-request"
        )
    if end - start > MAX_SPAN_NS:
        raise Problem(
            422, "Invalid request", "the window is longer than 400 days", kind="invalid-request"
        )
    # Whole seconds keep windows aligned across requests (and cacheable by the store).
    window_ns = max(10**9, -(-(end - start) // points) // 10**9 * 10**9)
    if resolution_s is not None:
        window_ns = resolution_s * 10**9
        if (end - start) // window_ns > MAX_POINTS:
            raise Problem(
                422,
                "Invalid request",
                f"{resolution_s} s windows over this span exceed {MAX_POINTS} points",
                kind="invalid-request",
            )
    try:
        s = store.series(asset.path, field, start, end, window_ns=window_ns, aggregate=aggregate)
    except ValueError as exc:  # e.g. mean of a text field: the store says which and why
        raise Problem(422, "Invalid request", str(exc), kind="invalid-request") from None
    values: list[float | str | None]
    if s.values.dtype == object:
        values = [str(v) for v in s.values.tolist()]
    else:
        v = s.values.astype(np.float64)
        values = [None if not math.isfinite(x) else x for x in v.tolist()]
    return SeriesPublic(
        asset=asset.path,
        field=field,
        aggregate=aggregate,
        window_s=window_ns / 1e9,
        time_ns=s.time_ns.astype(np.int64).tolist(),
        values=values,
        quality=s.quality.astype(np.int64).tolist(),
    )
