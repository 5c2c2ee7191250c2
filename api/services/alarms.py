"""Alarm evaluation: asset silent, broken thermocouple, deviation from setpoint, stall.

:func:`evaluate_alarms` is called by the app's background loop every ``alarm_interval_s``
(and by tests, and by ``POST /alarms/evaluate``). Each pass raises or refreshes the alarms whose
condition holds now and ends the open ones whose condition has cleared; an alarm keeps its
acknowledgement until it ends. Thresholds follow kiln controllers (docs/domain.md §2).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from api.context import AppContext
from core.plant import Kiln
from core.reading import Quality, Reading
from ingest.contracts import Store

log = logging.getLogger(__name__)

# L&L DynaTrol E-1: rising slower than 12 °F/h (about 6.7 °C/h) for 22.5 min while ramping.
STALL_RATE_C_H = 6.7
STALL_WINDOW_S = 22.5 * 60
# A thermocouple reading outside this range around the kiln's rating is an open or shorted
# sensor, not a temperature (type S/R burn-out reads far up- or down-scale).
BROKEN_BELOW_C = -50.0
BROKEN_ABOVE_MARGIN_C = 150.0
FIRING_STATES = ("heating", "soaking", "cooling")


@dataclass(frozen=True, slots=True)
class Condition:
    kind: str  # silent | broken_thermocouple | deviation | stall
    subject: str
    severity: str
    message: str


def evaluate_alarms(ctx: AppContext) -> int:
    """One pass over every asset of the plant model; returns how many conditions hold."""
    now = ctx.clock()
    held = 0
    for asset in ctx.plant.assets():
        try:
            conditions = asset_conditions(
                ctx.store, asset, now, ctx.settings.silent_after_s, ctx.settings.tolerance_c
            )
        except Exception:  # one unreadable asset must not stop the others' alarms
            log.exception("alarm evaluation of %s failed", asset.path)
            continue
        enterprise = asset.path.split("/", 1)[0]
        for c in conditions:
            ctx.meta.raise_alarm(
                enterprise=enterprise,
                asset=asset.path,
                kind=c.kind,
                subject=c.subject,
                severity=c.severity,
                message=c.message,
                now_ns=now,
            )
        ctx.meta.clear_alarms(asset.path, {(c.kind, c.subject) for c in conditions}, now)
        held += len(conditions)
    return held


def asset_conditions(
    store: Store, asset, now_ns: int, silent_after_s: float, tolerance_c: float
) -> list[Condition]:
    """The alarm conditions that hold for ``asset`` at ``now_ns``."""
    latest = store.latest(asset.path)
    if not latest:
        return [Condition("silent", "", "warning", f"{asset.path} has never reported")]
    last = max(r.source_time_ns for r in latest.values())
    age_s = (now_ns - last) / 1e9
    if age_s > silent_after_s:
        # Stale values say nothing about the kiln now: no other condition on top of silence.
        return [
            Condition(
                "silent",
                "",
                "warning",
                f"{asset.path} silent for {age_s:.0f} s (limit {silent_after_s:.0f} s)",
            )
        ]
    if not isinstance(asset, Kiln):
        return []
    out: list[Condition] = []
    state = latest.get("state")
    firing = state is not None and state.value in FIRING_STATES
    broken: set[str] = set()
    for field in asset.thermocouple_fields():
        r = latest.get(field)
        if r is None:
            continue
        stale_s = (now_ns - r.source_time_ns) / 1e9
        # The kiln reports but this thermocouple fell silent: an open circuit the source
        # reports as Bad-with-null (OPC UA Part 4), which the agent does not store as a value.
        why = (
            f"no reading for {stale_s:.0f} s while the kiln reports"
            if stale_s > silent_after_s
            else _broken(r, asset.max_temperature_c)
        )
        if why:
            broken.add(field)
            out.append(Condition("broken_thermocouple", field, "major", f"{field}: {why}"))
    if firing:
        for z in range(1, asset.zones + 1):
            sp = latest.get(f"zone{z}_setpoint_c")
            if sp is None or not isinstance(sp.value, int | float) or isinstance(sp.value, bool):
                continue
            for t in range(1, asset.thermocouples_per_zone + 1):
                field = f"zone{z}_tc{t}_temperature_c"
                r = latest.get(field)
                if r is None or field in broken:
                    continue
                dev = float(r.value) - float(sp.value)
                if abs(dev) > tolerance_c:
                    out.append(
                        Condition(
                            "deviation",
                            field,
                            "major",
                            f"{field} {float(r.value):.1f} °C is {dev:+.1f} °C from setpoint "
                            f"{float(sp.value):.1f} °C (band ±{tolerance_c:g} °C)",
                        )
                    )
    if state is not None and state.value == "heating":
        out.extend(_stalls(store, asset, now_ns, broken))
    return out


def _broken(r: Reading, max_c: float) -> str:
    if r.quality == Quality.BAD:
        return "the source reports bad quality"
    v = r.value
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"non-numeric value {v!r}"
    if not math.isfinite(v) or v < BROKEN_BELOW_C or v > max_c + BROKEN_ABOVE_MARGIN_C:
        return f"reads {v} °C, outside [{BROKEN_BELOW_C:g}, {max_c + BROKEN_ABOVE_MARGIN_C:g}] °C"
    return ""


def _stalls(store: Store, kiln: Kiln, now_ns: int, broken: set[str]) -> list[Condition]:
    """Zones whose mean temperature rose slower than STALL_RATE_C_H over STALL_WINDOW_S."""
    start = now_ns - int(STALL_WINDOW_S * 1e9)
    out = []
    for z in range(1, kiln.zones + 1):
        sp = store.series(kiln.path, f"zone{z}_setpoint_c", start, now_ns + 1)
        if len(sp) >= 2 and sp.values[-1] <= sp.values[0]:
            continue  # the programme is not asking for a rise (hold inside a heating state)
        rates = []
        for t in range(1, kiln.thermocouples_per_zone + 1):
            field = f"zone{z}_tc{t}_temperature_c"
            if field in broken:
                continue
            s = store.series(kiln.path, field, start, now_ns + 1)
            # Demand most of the window: a rate over two samples says nothing.
            if len(s) < 3 or (s.time_ns[-1] - s.time_ns[0]) < 0.8 * STALL_WINDOW_S * 1e9:
                continue
            hours = (s.time_ns - s.time_ns[0]) / 3.6e12
            rates.append(float(np.polyfit(hours, s.values.astype(np.float64), 1)[0]))
        if rates and max(rates) < STALL_RATE_C_H:
            out.append(
                Condition(
                    "stall",
                    f"zone{z}",
                    "major",
                    f"zone {z} rising {max(rates):.1f} °C/h over {STALL_WINDOW_S / 60:g} min "
                    f"(stall below {STALL_RATE_C_H} °C/h)",
                )
            )
    return out
