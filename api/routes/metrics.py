"""Prometheus metrics of this API process (admin token; scrape with a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AdminDep, CtxDep

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Request counts and latencies (Prometheus text format, admin)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(_: AdminDep, ctx: CtxDep) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
