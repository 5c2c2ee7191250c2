"""The app factory: ``create_app(settings, store=..., meta=..., plant=..., clock=...)``.

Called by ``kilnworks serve`` (api/cli.py), by ``kilnworks demo`` and by tests. Every
collaborator can be injected; whatever is not injected is opened from ``settings`` (and closed
again on shutdown). Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api import problems, routes
from api.context import AppContext, Clock
from api.metadata.store import MetadataStore
from api.observability import MetricsMiddleware
from api.problems import PROBLEM_RESPONSES
from api.routes import dashboard
from api.security import SecurityHeaders
from api.services.oee_cache import OeeCache
from api.settings import Settings
from core.plant import PlantModel, load_plant
from core.reading import now_ns
from ingest.contracts import Store

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

DESCRIPTION = """\
Kiln and press telemetry, firing conformance, OEE, digitalisation progress and the town
overview of Shangbu's electric-porcelain workshops.

Authenticate with `Authorization: Bearer kw_...` (create the first token with
`kilnworks serve create-token --role admin`). Every error is an RFC 9457 problem-details body
(`application/problem+json`). Times are integer UTC nanoseconds.
"""


def open_telemetry_store(url: str) -> Store:
    """Open the telemetry store by URL (the store package owns the URL schemes)."""
    from ingest.stores import open_store  # imported late: the API must start without it in tests

    return open_store(url)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    meta: MetadataStore | None = None,
    plant: PlantModel | None = None,
    clock: Clock = now_ns,
) -> FastAPI:
    """Build the API and dashboard app around the given collaborators (see module docstring)."""
    settings = settings or Settings()
    owned: list = []
    if plant is None:
        plant = load_plant(settings.plant_path)
    if meta is None:
        meta = MetadataStore.open(settings.db_url)
        owned.append(meta)
    else:
        meta.create_schema()
    if store is None:
        store = open_telemetry_store(settings.store_url)
        owned.append(store)
    ctx = AppContext(settings, store, meta, plant, clock, owned)
    oee_cache: OeeCache = OeeCache(
        clock,
        max_entries=settings.oee_cache_entries,
        live_s=settings.oee_cache_live_s,
        late_s=settings.oee_cache_late_s,
        settled_s=settings.oee_cache_settled_s,
    )
    ctx.oee_cache = oee_cache
    ctx.metrics.watch_oee_cache(oee_cache.stats)
    # Gradings and recorded firings feed kiln OEE: a write drops that asset's cached results.
    meta.add_listener(oee_cache.invalidate)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.alarm_interval_s > 0:
            task = asyncio.create_task(_alarm_loop(ctx))
        try:
            yield
        finally:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            meta.remove_listener(oee_cache.invalidate)
            for thing in reversed(ctx.owned):
                with contextlib.suppress(Exception):
                    thing.close()

    app = FastAPI(
        title="kilnworks",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=API_PREFIX + "/openapi.json",
        docs_url=API_PREFIX + "/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    problems.install(app)
    for module in routes.API_MODULES:
        app.include_router(module.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    dashboard.install(app)
    return app


async def _alarm_loop(ctx: AppContext) -> None:
    """Evaluate alarms every ``alarm_interval_s`` in a worker thread; log and go on on errors."""
    from api.services.alarms import evaluate_alarms

    while True:
        try:
            await asyncio.to_thread(evaluate_alarms, ctx)
        except Exception:  # keep evaluating: one bad pass must not silence every later alarm
            log.exception("alarm evaluation failed")
        await asyncio.sleep(ctx.settings.alarm_interval_s)
