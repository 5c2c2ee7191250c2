"""Benchmark: what the shangbu fleet costs at --speed 600 on this machine.

Runs the whole fleet (5 OPC UA servers, 10 kilns, 10 presses on a private Mosquitto) for a
wall-clock window and reports CPU seconds per wall second, kiln samples/s and MQTT messages/s.
Baseline, same run: the bare models (physics + press events, no OPC UA, no MQTT, no truth)
advanced over the same simulated span; the ratio is the price of speaking the protocols.

    python3 bench/simulators_fleet.py [--quick] [--seconds 20] [--speed 600]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.fleet import Fleet
from tests.servers import Mosquitto


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_fleet(scenario: str, speed: float, seconds: float, broker: Mosquitto) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(scenario, speed=speed, opcua_base_port=0, mqtt_url=broker.url, truth_dir=tmp,
                      security=("none",), seed=1)  # fmt: skip
        t0 = time.monotonic()
        await fleet.start()
        startup_s = time.monotonic() - t0
        c0, w0, sim0 = cpu_s(), time.monotonic(), fleet.clock.now_ns()
        k0, m0 = fleet.counters["kiln_ticks"], fleet.counters["press_messages"]
        await asyncio.sleep(seconds)
        wall = time.monotonic() - w0
        cpu = cpu_s() - c0
        sim_span_ns = fleet.clock.now_ns() - sim0
        out = {
            "startup_s": round(startup_s, 2),
            "wall_s": round(wall, 2),
            "cpu_s_per_wall_s": round(cpu / wall, 3),
            "kiln_samples_per_s": round((fleet.counters["kiln_ticks"] - k0) / wall, 1),
            "press_messages_per_s": round((fleet.counters["press_messages"] - m0) / wall, 1),
            "sample_interval_s": fleet.sample_interval_s,
            "sim_span_ns": sim_span_ns,
        }
        await fleet.stop()
        return out


def run_models(scenario: str, sim_span_ns: int, sample_interval_s: float) -> float:
    """CPU seconds for the bare models over the same simulated span (the baseline)."""
    fleet = Fleet(scenario, speed=600, truth_dir=None, seed=1)  # models only: never started
    c0 = cpu_s()
    step = int(sample_interval_s * 1e9)
    t = fleet.clock.start_time_ns
    end = t + sim_span_ns
    while t < end:
        t += step
        for kiln in fleet.kilns.values():
            kiln.advance_to(t)
            kiln.snapshot()
        for press in fleet.presses.values():
            while press.next_t_ns <= t:
                press.advance()
    return cpu_s() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="mini scenario, 3 s")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--speed", type=float, default=600.0)
    args = ap.parse_args()
    scenario = "mini" if args.quick else "shangbu"
    seconds = 3.0 if args.quick else args.seconds
    broker = Mosquitto()
    broker.start()
    try:
        fleet = asyncio.run(run_fleet(scenario, args.speed, seconds, broker))
    finally:
        broker.close()
    base_cpu = run_models(scenario, fleet["sim_span_ns"], fleet["sample_interval_s"])
    fleet_cpu = fleet["cpu_s_per_wall_s"] * fleet["wall_s"]
    print(json.dumps({
        "benchmark": "simulators_fleet", "scenario": scenario, "speed": args.speed, **fleet,
        "baseline_models_cpu_s": round(base_cpu, 3), "fleet_cpu_s": round(fleet_cpu, 3),
        "ratio_fleet_over_models": round(fleet_cpu / base_cpu, 1) if base_cpu > 0 else None,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
