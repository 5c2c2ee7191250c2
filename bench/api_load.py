"""API benchmark: throughput and latency under load, and the time to produce a firing report.

    python3 bench/api_load.py [--quick] [--duration S] [--connections N]

Prints one JSON object:

* ``load``: requests/s and p50/p99 latency (ms) of a trivial FastAPI endpoint (the baseline),
  the live endpoint (latest values of a kiln) and the OEE endpoint (a line over a day), served
  by uvicorn (uvloop + httptools) in its own process and loaded by ``wrk`` (Debian) from
  another; ``ratio_to_trivial`` = endpoint requests/s / trivial requests/s.
* ``firing_report``: seconds to produce the conformance report of a 30 h firing, 24
  thermocouples at 10 s sampling (259 200 readings) from the embedded SQLite store, next to
  the baseline of only reading those series from the store; and the same from InfluxDB 1.x
  (Debian ``influxd``, started on a free port in a temp dir) unless ``--no-influx``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth import Role, issue_token  # noqa: E402
from api.metadata.store import FiringRow, MetadataStore  # noqa: E402
from api.services.conformance import firing_report, thermocouple_matrix  # noqa: E402
from core.plant import load_plant, parse_plant  # noqa: E402
from core.reading import ReadingBatch, now_ns  # noqa: E402
from ingest.store_sqlite import SQLiteStore  # noqa: E402

S = 10**9
SEGMENTS = [
    {"kind": "ramp", "rate_c_h": 60.0, "target_c": 600.0},
    {"kind": "ramp", "rate_c_h": 80.0, "target_c": 1250.0},
    {"kind": "hold", "hours": 3.0},
    {"kind": "cool", "rate_c_h": 150.0, "target_c": 300.0},
]
BIG_KILN = """
[[enterprise]]
id = "bench"
key = true
  [[enterprise.site]]
  id = "plant-1"
    [[enterprise.site.line]]
    id = "firing-shop"
      [[enterprise.site.line.asset]]
      id = "kiln-24"
      type = "kiln"
      kind = "shuttle"
      zones = 12
      thermocouples_per_zone = 2
"""

SERVER = r"""
import sys, uvicorn
sys.path.insert(0, {root!r})
from api.app import create_app
from api.settings import Settings
from api.metadata.store import MetadataStore
from ingest.store_sqlite import SQLiteStore
app = create_app(Settings(alarm_interval_s=0), store=SQLiteStore({store!r}),
                 meta=MetadataStore.open({db!r}))
@app.get("/trivial")
def trivial() -> dict[str, str]:
    return {{"status": "ok"}}
uvicorn.run(app, host="127.0.0.1", port={port}, loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""


def _write_floats(store, asset, field, t, v) -> None:
    store.write(ReadingBatch.from_floats(asset, field, v, t, received_time_ns=t))


def seed_load(store_path: str, db_url: str) -> str:
    """A day of a press line and a kiln's latest values; returns an admin token."""
    plant = load_plant()
    store = SQLiteStore(store_path)
    now = now_ns()
    t = np.arange(now - 86400 * S, now, 100 * S, dtype=np.int64)
    for press in ("press-1", "press-2"):
        path = f"dalian/plant-1/forming-shop/{press}"
        n = np.arange(1, t.size + 1, dtype=np.float64)
        _write_floats(store, path, "count_total", t, n)
        _write_floats(store, path, "count_good", t, n - n // 20)
        from core.reading import Quality, Reading

        store.write(
            ReadingBatch.from_readings(
                [
                    Reading(path, "state", s, Quality.GOOD, int(ts), int(ts))
                    for ts, s in ((t[0], "running"), (t[300], "breakdown"), (t[340], "running"))
                ]
            )
        )
    kiln = plant.asset("dalian/plant-1/firing-shop/kiln-1")
    for f in kiln.thermocouple_fields():
        _write_floats(store, kiln.path, f, t[-60:], np.linspace(900, 950, 60))
    store.close()
    meta = MetadataStore.open(db_url)
    token, _ = issue_token(meta, name="bench", role=Role.ADMIN, enterprise=None, now_ns=now)
    meta.close()
    return token


def wrk(url: str, token: str, duration_s: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration_s + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests_per_s": rps,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def load_bench(tmp: Path, duration_s: int, connections: int) -> dict:
    store_path = str(tmp / "telemetry.db")
    db_url = f"sqlite:///{tmp}/meta.db"
    token = seed_load(store_path, db_url)
    from tests.servers import free_port, port_open  # the same helper the tests use

    port = free_port()
    script = SERVER.format(root=str(ROOT), store=store_path, db=db_url, port=port)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        urls = {
            "trivial": base + "/trivial",
            "live_latest": base + "/api/v1/assets/dalian/plant-1/firing-shop/kiln-1/latest",
            "oee_line_day": base + "/api/v1/oee?scope=dalian/plant-1/forming-shop&bucket=window",
        }
        wrk(urls["trivial"], token, 1, 4)  # warm-up
        results = {name: wrk(url, token, duration_s, connections) for name, url in urls.items()}
        base_rps = results["trivial"]["requests_per_s"]
        for r in results.values():
            r["ratio_to_trivial"] = round(r["requests_per_s"] / base_rps, 4)
        return results
    finally:
        proc.terminate()
        proc.wait(15)


def report_bench(store, store_name: str, hours: float, repeats: int) -> dict:
    """Write a firing of ``hours`` (24 thermocouples, 10 s) into ``store``, time its report."""
    plant = parse_plant(BIG_KILN)
    kiln = plant.asset("bench/plant-1/firing-shop/kiln-24")
    start = now_ns() - int(hours * 3600 * S) - 3600 * S
    t = start + np.arange(int(hours * 3600 / 10), dtype=np.int64) * 10 * S
    from analytics.programme import Programme

    prog = Programme.from_segments(SEGMENTS, name="bench")
    sp = prog.setpoint_c((t - start) / 1e9)
    sp = np.where(np.isnan(sp), 300.0, sp)
    rng = np.random.default_rng(1)
    for f in kiln.thermocouple_fields():
        _write_floats(store, kiln.path, f, t, sp + rng.normal(0, 3, t.size))
    firing = FiringRow(
        kiln.path,
        "B-1",
        "bench",
        "bench",
        json.dumps(SEGMENTS),
        int(t[0]),
        int(t[-1]),
        "complete",
        None,
        None,
    )

    def read() -> None:
        thermocouple_matrix(store, kiln, firing.start_ns, firing.end_ns + 1)

    def judge() -> None:
        firing_report(store, kiln, firing, now_ns=now_ns(), tolerance_c=15.0)

    read()  # warm caches
    # Interleaved rounds, medians: on a shared machine a burst of someone else's work then
    # hits both measurements alike instead of skewing one of them.
    reads, reports = [], []
    for _ in range(repeats):
        for fn, out in ((read, reads), (judge, reports)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    read_s, report_s = float(np.median(reads)), float(np.median(reports))
    report = firing_report(store, kiln, firing, now_ns=now_ns(), tolerance_c=15.0)
    return {
        "store": store_name,
        "hours": hours,
        "thermocouples": len(kiln.thermocouple_fields()),
        "readings": int(t.size * len(kiln.thermocouple_fields())),
        "read_series_s": round(read_s, 4),
        "report_s": round(report_s, 4),
        "analytics_s": round(report_s - read_s, 4),
        "ratio_to_read": round(report_s / read_s, 3),
        "score": report.score,
    }


def firing_reports(tmp: Path, hours: float, repeats: int, influx: bool) -> list[dict]:
    out = []
    store = SQLiteStore(str(tmp / "firing.db"))
    try:
        out.append(report_bench(store, "sqlite (embedded)", hours, repeats))
    finally:
        store.close()
    if influx:
        from ingest.stores import open_store
        from tests.servers import InfluxDB

        (tmp / "influxdb").mkdir()
        server = InfluxDB(tmp / "influxdb")
        server.start()
        try:
            server.create_database("bench")
            store = open_store(server.store_url("bench"))
            try:
                out.append(report_bench(store, "influxdb 1.x (v1 HTTP API)", hours, repeats))
            finally:
                store.close()
        finally:
            server.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    p.add_argument("--duration", type=int, default=None, help="wrk seconds per endpoint")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB firing report")
    args = p.parse_args(argv)
    if not shutil.which("wrk"):
        print("bench/api_load.py: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    duration = args.duration or (2 if args.quick else 10)
    tmp = Path(tempfile.mkdtemp(prefix="kilnworks-bench-api-"))
    try:
        out = {
            "benchmark": "api_load",
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "wrk": {"threads": 2, "connections": args.connections, "duration_s": duration},
            "load": load_bench(tmp, duration, args.connections),
            "firing_report": firing_reports(
                tmp, 3.0 if args.quick else 30.0, 1 if args.quick else 5, not args.no_influx
            ),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
