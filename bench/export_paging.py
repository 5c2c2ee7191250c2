"""``kilnworks export`` of one long series from InfluxDB: paged vs unpaged, rows/s and peak memory.

Starts its own InfluxDB 1.x (tests.servers, temp dir, free loopback port), writes ``--points``
readings of one thermocouple (1 s apart, 0.1 °C, unit °C) through ``InfluxV1Store.write``,
then, in the same run, exports them with ``ingest.cli_export.export_csv`` (CSV with RFC 3339
times, as the command writes it) per page size, each export in a fresh child process so that
its peak RSS is its own; ``--repeat`` rounds over all variants, the fastest run of each kept:

* ``paged_<n>``: ``--page-size n`` (the default is 50,000);
* ``unpaged``: the baseline - a page larger than the series, so one InfluxQL query per series
  and the whole answer in memory (what a single raw read does).

``query_seconds``: time inside the page queries (InfluxDB answering, the JSON parsed); the
rest is building readings and writing CSV. The CSV goes into a SHA-256, not to disk;
``identical`` says every variant wrote the same bytes.
``peak_rss_mb`` is the child's peak resident set (``VmHWM``: ``ru_maxrss`` would carry the
parent's peak across ``exec``), ``export_rss_mb`` that minus the child's RSS before the export
(interpreter, imports).

    python bench/export_paging.py            # 1M points
    python bench/export_paging.py --quick    # 50k points, for a smoke run

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

KILN = "xinghai/plant-1/firing-shop/kiln-2"
FIELD = "zone3_tc2_temperature_c"
T0 = 1_767_225_600_000_000_000
STEP = 1_000_000_000


class HashSink:
    """A text sink for csv.writer that keeps only the SHA-256 and the size of what it got."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, text: str) -> int:
        data = text.encode()
        self.sha.update(data)
        self.bytes += len(data)
        return len(text)


def _status_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(url: str, page_size: int) -> dict:
    """One export in this (fresh) process: the figures of one variant."""
    from ingest.cli_export import export_csv
    from ingest.stores import open_store

    store = open_store(url)
    calls, query_s = 0, 0.0
    original = store._raw_readings  # count and time the page queries (HTTP and JSON parse)

    def counted(*args: object) -> object:
        nonlocal calls, query_s
        calls += 1
        t0 = time.perf_counter()
        try:
            return original(*args)
        finally:
            query_s += time.perf_counter() - t0

    store._raw_readings = counted  # type: ignore[method-assign]
    store.list_series("")  # connect before the baseline RSS
    before = _status_mb("VmRSS")
    sink = HashSink()
    t0 = time.perf_counter()
    rows = export_csv(store, sink, page_size=page_size)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    store.close()
    peak = _status_mb("VmHWM")
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "queries": calls,
        "query_seconds": round(query_s, 3),
        "peak_rss_mb": round(peak, 1),
        "export_rss_mb": round(peak - before, 1),
        "csv_bytes": sink.bytes,
        "sha256": sink.sha.hexdigest(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50k points (smoke run)")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--page-sizes", default="50000,5000", help="comma-separated page sizes")
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant, round-robin; best")
    ap.add_argument("--child", nargs=2, metavar=("URL", "PAGE_SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0

    from core.reading import ReadingBatch
    from ingest.influx_v1 import InfluxV1Store
    from tests.servers import InfluxDB

    n = 50_000 if args.quick else args.points
    sizes = [int(s) for s in args.page_sizes.split(",")]
    server = InfluxDB()
    try:
        server.start()
        server.create_database("bench")
        url = server.store_url("bench") + "?timeout=600"
        rng = np.random.default_rng(3)
        values = np.round(1200.0 + np.cumsum(rng.normal(0, 0.3, n)), 1)
        times = T0 + np.arange(n, dtype=np.int64) * STEP
        with InfluxV1Store.from_url(url) as store:
            for lo in range(0, n, 100_000):
                chunk = ReadingBatch.from_floats(
                    KILN, FIELD, values[lo : lo + 100_000], times[lo : lo + 100_000], unit="°C"
                )
                assert store.write(chunk).written == len(chunk)
        variants = {f"paged_{s}": s for s in sizes} | {"unpaged": 10 * n}
        results: dict[str, dict] = {}
        for _ in range(args.repeat):  # round-robin, so a load spike hits every variant alike
            for name, size in variants.items():
                out = subprocess.run(
                    [sys.executable, __file__, "--child", url, str(size)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                got = json.loads(out.stdout)
                if name not in results or got["seconds"] < results[name]["seconds"]:
                    results[name] = got
    finally:
        server.close()
    base = results["unpaged"]
    report = {
        "benchmark": "export_paging",
        "backend": "influxdb-1.x",
        "points": n,
        "identical": len({r["sha256"] for r in results.values()}) == 1,
        **{name: {k: v for k, v in r.items() if k != "sha256"} for name, r in results.items()},
    }
    for name in results:
        if name != "unpaged":
            report[name]["rows_per_s_vs_unpaged"] = round(
                results[name]["rows_per_s"] / base["rows_per_s"], 2
            )
            report[name]["export_rss_vs_unpaged"] = round(
                results[name]["export_rss_mb"] / max(base["export_rss_mb"], 0.1), 3
            )
    print(json.dumps(report, indent=2))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
