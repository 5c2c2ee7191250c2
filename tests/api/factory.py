"""Telemetry a test writes into a store: a kiln firing, a press shift, as the simulators would."""

from __future__ import annotations

import json

import numpy as np

from analytics.programme import Programme
from core.reading import Quality, Reading, ReadingBatch

S = 10**9
SEGMENTS = [
    {"kind": "ramp", "rate_c_h": 200.0, "target_c": 600.0},
    {"kind": "hold", "hours": 0.5},
    {"kind": "ramp", "rate_c_h": 150.0, "target_c": 1200.0},
    {"kind": "hold", "hours": 1.0},
    {"kind": "cool", "rate_c_h": 300.0, "target_c": 300.0},
]


def put(store, asset: str, field: str, times_ns, values, quality=Quality.GOOD) -> None:
    """Write one field's values (floats, ints, bools or strings)."""
    rows = []
    for t, v in zip(times_ns, values, strict=True):
        if isinstance(v, np.generic):
            v = v.item()
        rows.append(Reading(asset, field, v, Quality(quality), int(t), int(t)))
    result = store.write(ReadingBatch.from_readings(rows))
    assert not result.rejected, result.rejected[:3]


def write_firing(
    store,
    kiln,
    firing_id: str,
    start_ns: int,
    *,
    sample_s: int = 60,
    offset_c: float = 0.0,
    hot_zone: tuple[int, float] | None = None,
    until_ns: int | None = None,
    then_idle: bool = True,
    send_programme: bool = True,
) -> Programme:
    """A firing of ``kiln`` following ``SEGMENTS``; thermocouples read setpoint + ``offset_c``
    (+ ``hot_zone[1]`` in zone ``hot_zone[0]``) with a little noise. Returns the programme.
    ``send_programme`` False: the controller publishes no ``programme`` fields (none loaded)."""
    prog = Programme.from_segments(
        SEGMENTS, name="test-hv", max_temperature_c=kiln.max_temperature_c
    )
    end = start_ns + int(prog.duration_s * S)
    stop = min(end, until_ns) if until_ns is not None else end
    t = np.arange(start_ns, stop, sample_s * S, dtype=np.int64)
    sp = prog.setpoint_c((t - start_ns) / 1e9)
    rng = np.random.default_rng(abs(hash(firing_id)) % 2**32)
    for z in range(1, kiln.zones + 1):
        put(store, kiln.path, f"zone{z}_setpoint_c", t, sp)
        for tc in range(1, kiln.thermocouples_per_zone + 1):
            extra = hot_zone[1] if hot_zone and hot_zone[0] == z else 0.0
            temps = sp + offset_c + extra + rng.normal(0, 0.5, t.size)
            put(store, kiln.path, f"zone{z}_tc{tc}_temperature_c", t, temps)
    segs = prog.segment_index((t - start_ns) / 1e9)
    states = [
        "heating"
        if prog.segments[min(i, len(prog.segments) - 1)].kind == "ramp"
        else "soaking"
        if prog.segments[min(i, len(prog.segments) - 1)].kind == "hold"
        else "cooling"
        for i in segs
    ]
    put(store, kiln.path, "state", t, states)
    put(store, kiln.path, "firing_id", t, [firing_id] * t.size)
    if send_programme:
        put(store, kiln.path, "programme", t[:1], ["test-hv"])
        put(store, kiln.path, "programme_segments", t[:1], [json.dumps(SEGMENTS)])
    put(store, kiln.path, "energy_kwh", t, np.linspace(0, 5000, t.size))
    if then_idle and stop == end:
        put(store, kiln.path, "state", [end], ["idle"])
        put(store, kiln.path, "firing_id", [end], [""])
    return prog


def write_press_shift(
    store,
    press,
    start_ns: int,
    hours: float,
    *,
    breakdown_h: float = 1.0,
    cycle_s: float = 100.0,
    reject_every: int = 20,
) -> None:
    """A press running ``hours`` with one breakdown of ``breakdown_h`` in the middle, counting
    a cycle every ``cycle_s`` and a reject every ``reject_every`` cycles."""
    mid = start_ns + int((hours - breakdown_h) / 2 * 3600 * S)
    back = mid + int(breakdown_h * 3600 * S)
    put(store, press.path, "state", [start_ns, mid, back], ["running", "breakdown", "running"])
    put(store, press.path, "state_reason", [start_ns, mid, back], ["", "hydraulic leak", ""])
    end = start_ns + int(hours * 3600 * S)
    t = np.arange(start_ns, end, int(cycle_s * S), dtype=np.int64)
    t = t[(t < mid) | (t >= back)]
    n = np.arange(1, t.size + 1)
    rejects = n // reject_every
    put(store, press.path, "count_total", t, n.astype(float))
    put(store, press.path, "count_good", t, (n - rejects).astype(float))
    put(store, press.path, "cycle_time_s", t, np.full(t.size, cycle_s))
