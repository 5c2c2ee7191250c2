"""Heat work as a pyrometric cone equivalent, and AMS2750 temperature uniformity classes.

Orton self-supporting cones (domain.md §2, from Orton chart copies): the temperature at which a
cone bends depends on the heating rate over the **last 100 °C** before the end point. The chart
gives two columns we use, 60 °C/h and 150 °C/h:

* between 60 and 150 °C/h the bending temperature is interpolated linearly in the rate;
* outside that range the rate is **clamped** to the nearest column (``rate_clamped`` says so):
  the chart's 15 °C/h column is not in our table, and extrapolating a two-point line past its ends
  would invent numbers. A slower firing does more heat work, so clamping at 60 °C/h gives a
  *conservative* (lower) cone for slow firings.

The cone equivalent is fractional: a peak halfway between cone 9's and cone 10's bending
temperatures at that rate is cone 9.5. Below cone 8 or above cone 13 it is NaN with
``below_range`` / ``above_range`` set, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# cone -> (°C at 60 °C/h, °C at 150 °C/h); Orton self-supporting cones, domain.md §2.
ORTON_SELF_SUPPORTING: dict[int, tuple[float, float]] = {
    8: (1249.0, 1263.0),
    9: (1260.0, 1280.0),
    10: (1285.0, 1305.0),
    11: (1294.0, 1315.0),
    12: (1306.0, 1326.0),
    13: (1331.0, 1346.0),
}
RATE_LOW_C_H = 60.0
RATE_HIGH_C_H = 150.0

_CONES = np.asarray(sorted(ORTON_SELF_SUPPORTING), dtype=np.float64)
_T60 = np.asarray([ORTON_SELF_SUPPORTING[int(c)][0] for c in _CONES])
_T150 = np.asarray([ORTON_SELF_SUPPORTING[int(c)][1] for c in _CONES])

# AMS2750 temperature uniformity classes: class -> ± tolerance in °C (domain.md §2).
AMS2750_CLASSES: dict[int, float] = {1: 3.0, 2: 6.0, 3: 8.0, 4: 10.0, 5: 14.0, 6: 28.0}


@dataclass(frozen=True, slots=True)
class ConeResult:
    """Arrays of the same shape as the inputs."""

    cone: np.ndarray  # fractional cone equivalent, NaN when out of the table or undefined
    rate_c_h: np.ndarray  # the heating rate over the last 100 °C used
    rate_clamped: np.ndarray  # bool: rate outside [60, 150] °C/h and clamped
    below_range: np.ndarray  # bool: peak below cone 8 at that rate
    above_range: np.ndarray  # bool: peak above cone 13 at that rate


def cone_temperatures_c(rate_c_h: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``(cones, bending temperature (..., n_cones))`` at each heating rate (clamped)."""
    r = np.clip(np.asarray(rate_c_h, dtype=np.float64), RATE_LOW_C_H, RATE_HIGH_C_H)
    f = (r - RATE_LOW_C_H) / (RATE_HIGH_C_H - RATE_LOW_C_H)
    return _CONES, _T60 + f[..., None] * (_T150 - _T60)


def cone_equivalent(peak_c: np.ndarray | float, rate_c_h: np.ndarray | float) -> ConeResult:
    """Cone equivalent of a firing that peaked at ``peak_c`` after heating through its last
    100 °C at ``rate_c_h`` (arrays broadcast). NaN inputs give NaN cones, no flags."""
    peak = np.asarray(peak_c, dtype=np.float64)
    rate = np.asarray(rate_c_h, dtype=np.float64)
    peak, rate = np.broadcast_arrays(peak, rate)
    ok = np.isfinite(peak) & np.isfinite(rate) & (rate > 0)
    _, temps = cone_temperatures_c(np.where(ok, rate, RATE_LOW_C_H))
    # Number of cones whose bending temperature the peak reached, then the fraction of the way
    # to the next one; the table is increasing in cone at every rate, so this is monotone.
    reached = (temps <= peak[..., None]).sum(axis=-1)
    below = ok & (reached == 0)
    above = ok & (reached == len(_CONES)) & (peak > temps[..., -1])
    i = np.clip(reached - 1, 0, len(_CONES) - 2)
    lo = np.take_along_axis(temps, i[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(temps, (i + 1)[..., None], axis=-1)[..., 0]
    cone = _CONES[i] + np.clip((peak - lo) / (hi - lo), 0.0, 1.0)
    cone = np.where(ok & ~below & ~above, cone, np.nan)
    clamped = ok & ((rate < RATE_LOW_C_H) | (rate > RATE_HIGH_C_H))
    return ConeResult(cone, np.where(ok, rate, np.nan), clamped, below, above)


def uniformity_class(tolerance_c: np.ndarray | float) -> np.ndarray:
    """Best AMS2750 class (1-6) whose ± tolerance covers ``tolerance_c``; 0 = outside class 6,
    -1 = undefined (NaN input)."""
    tol = np.asarray(tolerance_c, dtype=np.float64)
    limits = np.asarray([AMS2750_CLASSES[c] for c in sorted(AMS2750_CLASSES)])
    cls = np.searchsorted(limits, tol, side="left") + 1
    cls = np.where(cls > len(limits), 0, cls)
    return np.where(np.isfinite(tol), cls, -1).astype(np.int64)
