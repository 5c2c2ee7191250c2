"""Small builders shared by the ingest delivery tests."""

from __future__ import annotations

import numpy as np

from core.reading import Quality, Reading, ReadingBatch

KILN = "xinghai/plant-1/firing-shop/kiln-2"
FIELD = "zone3_tc2_temperature_c"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def floats(n: int, *, start: int = 0, asset: str = KILN, field: str = FIELD) -> ReadingBatch:
    """``n`` float readings one second apart, values 1000.0 + i (distinct, exact)."""
    i = np.arange(start, start + n)
    return ReadingBatch.from_floats(
        asset, field, 1000.0 + i, T0 + i * 1_000_000_000, received_time_ns=T0
    )


def mixed() -> list[Reading]:
    """One reading of each value kind, with a unit and non-GOOD qualities."""
    return [
        Reading(KILN, FIELD, 1234.5, Quality.GOOD, T0, T0 + 5, "°C"),
        Reading(KILN, "cycle_count", 7, Quality.UNCERTAIN, T0 + 1, T0 + 6),
        Reading(KILN, "burner_on", True, Quality.GOOD, T0 + 2, T0 + 7),
        Reading(KILN, "programme", 'bisque 1320 °C, "slow"', Quality.BAD, T0 + 3, T0 + 8),
    ]
