"""The collaborators one running API works with, injected into :func:`api.app.create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from api.auth import TokenCache
from api.metadata.store import MetadataStore
from api.observability import ApiMetrics
from api.services.oee_cache import OeeCache
from api.settings import Settings
from core.plant import PlantModel
from ingest.contracts import Store

Clock = Callable[[], int]  # integer UTC nanoseconds


@dataclass(slots=True)
class AppContext:
    """Held in ``app.state.ctx``; routes reach it only through the aliases in ``api.deps``."""

    settings: Settings
    store: Store
    meta: MetadataStore
    plant: PlantModel
    clock: Clock
    # Closed on shutdown only when the app opened them itself (not when injected by a caller).
    owned: list = field(default_factory=list)
    tokens: TokenCache = field(default_factory=TokenCache)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    # Per-asset OEE results (api/services/oee_cache.py); create_app builds it from settings.
    oee_cache: OeeCache | None = None
