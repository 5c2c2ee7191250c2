"""One module per resource; each exposes ``router``, mounted under /api/v1 by api.app."""

from api.routes import (
    alarms,
    digitalisation,
    firings,
    health,
    live,
    metrics,
    oee,
    plant,
    presses,
    tokens,
    town,
)

API_MODULES = (
    health,
    metrics,
    tokens,
    plant,
    live,
    firings,
    presses,
    oee,
    digitalisation,
    town,
    alarms,
)
