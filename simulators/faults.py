"""Fault kinds and how they act on the models (the fleet decides when; this says what).

Kiln faults change the physics (the wire then shows the consequences), press faults change the
press's state or reject rate, site faults act on a whole enterprise's OPC UA server or MQTT
links, and ``garbage`` sends bad payloads. docs/simulators.md has the table of what each shows.
"""

from __future__ import annotations

from typing import Any

from simulators.kiln_model import ShuttleKiln, TunnelKiln

KILN_FAULTS = (
    "broken_thermocouple",
    "nan_reading",
    "burner_trip",
    "stall",
    "overshoot",
    "push_stop",
)
PRESS_FAULTS = ("press_breakdown", "short_stop", "reject_burst", "garbage")
SITE_FAULTS = ("opcua_restart", "mqtt_disconnect")
ASSET_FAULTS = ("clock_skew",)  # any kiln or press: its clock runs wrong by offset_s


def skew_ns(p: dict[str, Any]) -> int:
    """The ``offset_s`` of a clock_skew fault (default +1 h) in ns; +-30 days at most."""
    offset = p.get("offset_s", 3600.0)
    if (
        not isinstance(offset, int | float)
        or isinstance(offset, bool)
        or not abs(offset) <= 30 * 86400
    ):
        raise FaultError(
            f"clock_skew: offset_s must be a number of seconds within 30 days, got {offset!r}"
        )
    return int(offset * 1e9)


class FaultError(ValueError):
    """An ``inject`` that cannot apply (unknown fault, wrong asset kind, bad parameter)."""


def check_rate(name: str, value: Any) -> float:
    """A probability parameter (``reject_rate``, ``power_fraction``) in [0, 1]."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise FaultError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise FaultError(f"{name} must be in [0, 1], got {rate}")
    return rate


def apply_kiln_fault(
    model: ShuttleKiln | TunnelKiln,
    fault: str,
    p: dict[str, Any],
    *,
    on: bool,
    dry_run: bool = False,
) -> None:
    """Switch a kiln fault on or off in the model; :class:`FaultError` for a bad parameter
    (raised before anything changes). ``dry_run`` only checks the parameters."""
    b = model.bank

    def zone_index(required: bool) -> slice | int:
        z = p.get("zone")
        if z is None:
            if required:
                raise FaultError(f"{fault} needs zone=")
            return slice(None)
        if not isinstance(z, int) or isinstance(z, bool) or not 1 <= z <= b.zones:
            raise FaultError(f"{fault}: zone must be 1..{b.zones}, got {z!r}")
        return z - 1

    if fault in ("broken_thermocouple", "nan_reading"):
        z = zone_index(True)
        tc = p.get("tc", 1)
        if not isinstance(tc, int) or isinstance(tc, bool) or not 1 <= tc <= b.tcs:
            raise FaultError(f"{fault}: tc must be 1..{b.tcs}, got {tc!r}")
        if not dry_run:
            (b.broken if fault == "broken_thermocouple" else b.nan_tc)[z, tc - 1] = on
    elif fault == "burner_trip":
        zi = zone_index(False)
        if not dry_run:
            b.tripped[zi] = on
    elif fault == "stall":
        frac = check_rate("stall: power_fraction", p.get("power_fraction", 0.4))
        zi = zone_index(False)
        if not dry_run:
            b.available[zi] = frac if on else 1.0
    elif fault == "overshoot":
        delta = p.get("delta_c", 40.0)
        if not isinstance(delta, int | float) or not -300 <= delta <= 300:
            raise FaultError(f"overshoot: delta_c must be a number in [-300, 300], got {delta!r}")
        zi = zone_index(False)
        if not dry_run:
            b.bias[zi] = float(delta) if on else 0.0
    elif fault == "push_stop":
        if not isinstance(model, TunnelKiln):
            raise FaultError("push_stop needs a tunnel kiln")
        if not dry_run:
            model.pushes_stopped = on
