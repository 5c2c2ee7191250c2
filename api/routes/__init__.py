"""One module per resource; each exposes ``router``, mounted under /api/v1 by api.app."""

from api.routes import (
    alarms,
    digitalisation,
    firings,
    health,
    live,
    oee,
    plant,
    presses,
    tokens,
    town,
)

API_MODULES = (health, tokens, plant, live, firings, presses, oee, digitalisation, town, alarms)
