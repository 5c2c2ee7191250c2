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
    python bench/export_paging.py --year     # one point a minute for 365 days, ~53 shards

``--year`` measures whether a page costs more the longer the range left after it (each page's
query runs from the cursor to the export's end, so InfluxDB may plan every later shard): one
series of one point a minute for 365 days (525,600 points; the database's default shard
duration, 7 days, gives ~53 shards), then, per page size, the time of one page query
(``ORDER BY time LIMIT n``) at the start of the range, at the middle and at the last full
page, each once to the export's end (as export pages today) and once bounded to the page's
own time extent; and the whole series read page by page (``ingest.paging``, no CSV): every
query to the end (export before windowing), ``windowed`` (what the store's ``iter_readings``
does now) and fixed one-week windows, with their query counts.
Best of ``--repeat`` round-robin runs.

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


YEAR_STEP = 60 * STEP
YEAR_POINTS = 365 * 24 * 60


def _write_series(url: str, n: int, step: int) -> None:
    from core.reading import ReadingBatch
    from ingest.influx_v1 import InfluxV1Store

    rng = np.random.default_rng(3)
    values = np.round(1200.0 + np.cumsum(rng.normal(0, 0.3, n)), 1)
    times = T0 + np.arange(n, dtype=np.int64) * step
    with InfluxV1Store.from_url(url) as store:
        for lo in range(0, n, 100_000):
            chunk = ReadingBatch.from_floats(
                KILN, FIELD, values[lo : lo + 100_000], times[lo : lo + 100_000], unit="°C"
            )
            assert store.write(chunk).written == len(chunk)


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def year(args: argparse.Namespace) -> dict:
    """The ``--year`` measurement (see the module docstring)."""
    from ingest.influx_v1 import InfluxV1Store
    from ingest.paging import pages_by_time
    from tests.servers import InfluxDB, wait_until

    class _ColdInfluxDB(InfluxDB):
        """influxd that snapshots a shard's write cache to TSM after 1 s without writes."""

        def prepare(self) -> None:
            super().prepare()
            conf = self.root / "influxdb.conf"
            conf.write_text(
                conf.read_text().replace(
                    "[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "1s"\n', 1
                )
            )

        def shard_dirs(self) -> list[Path]:
            return [d for d in (self.root / "data" / "bench").glob("autogen/*") if d.is_dir()]

        def tsm_shards(self) -> int:
            return sum(1 for d in self.shard_dirs() if any(d.glob("*.tsm")))

    n = YEAR_POINTS // 10 if args.quick else YEAR_POINTS
    end = T0 + n * YEAR_STEP
    sizes = [int(s) for s in args.page_sizes.split(",")]
    server = _ColdInfluxDB()
    report: dict = {"benchmark": "export_paging --year", "backend": "influxdb-1.x", "points": n}
    try:
        server.start()
        server.create_database("bench")
        url = server.store_url("bench") + "?timeout=600"
        _write_series(url, n, YEAR_STEP)
        # history is read from TSM files, not from the write cache: wait for the snapshots
        wait_until(lambda: server.tsm_shards() >= 0.9 * len(server.shard_dirs()), 120, "TSM")
        report["tsm_shards"] = server.tsm_shards()
        shards = server.query("SHOW SHARDS")["results"][0]["series"]
        report["shards"] = sum(len(s.get("values") or []) for s in shards if s["name"] == "bench")
        with InfluxV1Store.from_url(url) as store:

            def raw(lo: int, hi: int, limit: int | None) -> list[list]:
                return store._raw_readings(KILN, FIELD, lo, hi, limit)

            def paged_rows(mode: str, size: int) -> tuple[int, int]:
                """Rows and queries of the whole series read page by page: ``to_end`` (every
                query to the end, export before windowing), ``windowed`` (the store's
                ``iter_readings`` now), ``weekly_windows`` (fixed one-shard windows)."""
                queries = 0

                def counted(lo: int, hi: int, limit: int | None) -> list[list]:
                    nonlocal queries
                    queries += 1
                    return raw(lo, hi, limit)

                rows, lo = 0, T0
                span = 7 * 24 * 3600 * STEP if mode == "weekly_windows" else end - T0
                while lo < end:
                    hi = min(lo + span, end)
                    for page in pages_by_time(
                        counted, lo, hi, size, time_of=lambda r: r[0], windowed=mode == "windowed"
                    ):
                        rows += len(page)
                    lo = hi
                return rows, queries

            raw(T0, end, 1)  # warm up: caches, connection
            for size in sizes:
                extent = size * YEAR_STEP  # the time one full page covers on this data
                at = {"start": T0, "middle": T0 + (n // 2) * YEAR_STEP, "last": end - extent}
                pages: dict[str, dict] = {}
                for _ in range(args.repeat):  # round-robin
                    for where, lo in at.items():
                        for bound, hi in (("to_end", end), ("bounded", lo + extent)):
                            t0 = time.perf_counter()
                            got = len(raw(lo, hi, size))
                            dt = time.perf_counter() - t0
                            assert got == size, (where, bound, got)
                            key = f"{where}_{bound}_s"
                            pages.setdefault(where, {})
                            pages[where][key] = round(min(pages[where].get(key, dt), dt), 4)
                whole: dict[str, dict] = {}
                for _ in range(args.repeat):
                    for name in ("to_end", "windowed", "weekly_windows"):
                        t0 = time.perf_counter()
                        rows, queries = paged_rows(name, size)
                        dt = time.perf_counter() - t0
                        assert rows == n, (name, rows)
                        if name not in whole or dt < whole[name]["seconds"]:
                            whole[name] = {"seconds": round(dt, 3), "queries": queries}
                report[f"page_{size}"] = {
                    "page_extent_days": round(extent / (86400 * STEP), 2),
                    **pages,
                    "first_vs_last_to_end": round(
                        pages["start"]["start_to_end_s"] / pages["last"]["last_to_end_s"], 2
                    ),
                    "first_to_end_vs_bounded": round(
                        pages["start"]["start_to_end_s"] / pages["start"]["start_bounded_s"], 2
                    ),
                    "export": whole,
                    "export_to_end_vs_windowed": round(
                        whole["to_end"]["seconds"] / whole["windowed"]["seconds"], 2
                    ),
                }
    finally:
        server.close()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50k points (smoke run)")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--page-sizes", default="50000,5000", help="comma-separated page sizes")
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant, round-robin; best")
    ap.add_argument("--year", action="store_true", help="a year of 1/min data over ~53 shards")
    ap.add_argument("--child", nargs=2, metavar=("URL", "PAGE_SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0
    if args.year:
        print(json.dumps(year(args), indent=2))
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
