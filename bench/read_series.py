"""Reading one long series back into NumPy: InfluxV1Store.series vs the raw HTTP download.

Starts its own InfluxDB 1.x (tests.servers, temp dir, free loopback port), writes ``--points``
readings of one thermocouple (1 s apart, 0.1 °C resolution) through ``InfluxV1Store.write``,
then, in the same run, best of ``--repeat``:

* ``store_series``: ``InfluxV1Store.series(asset, field, start, end)``: the field-type lookup,
  the InfluxQL query (CSV, chunked) and parsing into int64/float64/uint8 arrays;
* ``raw_csv_download``: the baseline - the same query POSTed with httpx, body streamed in 1 MiB
  reads and thrown away, no parsing (the floor for any client of the v1 API);
* ``raw_json_download``: the same query as JSON (InfluxDB's default format), body read only;
* ``store_series_downsampled``: 1-minute means (``window_ns``), for scale.

``ratio_raw_vs_store`` = raw CSV time / store time (1.0 = parsing is free).

    python bench/read_series.py            # 1M points
    python bench/read_series.py --quick    # 50k points, for CI smoke runs

Prints one JSON object. The embedded SQLite store is benchmarked by its own owner.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from core.reading import ReadingBatch  # noqa: E402
from ingest.influx_v1 import InfluxV1Store  # noqa: E402
from ingest.influxql import int_literal, quote_ident, quote_string  # noqa: E402
from tests.servers import InfluxDB  # noqa: E402

KILN = "xinghai/plant-1/firing-shop/kiln-2"
FIELD = "zone3_tc2_temperature_c"
T0 = 1_767_225_600_000_000_000
STEP = 1_000_000_000


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50k points (CI smoke run)")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n = 50_000 if args.quick else args.points
    server = InfluxDB()
    try:
        server.start()
        server.create_database("bench")
        rng = np.random.default_rng(3)
        values = np.round(1200.0 + np.cumsum(rng.normal(0, 0.3, n)), 1)
        times = T0 + np.arange(n, dtype=np.int64) * STEP
        store = InfluxV1Store.from_url(server.store_url("bench") + "?timeout=300")
        t0 = time.perf_counter()
        for lo in range(0, n, 100_000):
            chunk = ReadingBatch.from_floats(
                KILN, FIELD, values[lo : lo + 100_000], times[lo : lo + 100_000], unit="°C"
            )
            assert store.write(chunk).written == len(chunk)
        write_s = time.perf_counter() - t0
        start, end = int(times[0]), int(times[-1]) + 1

        def series():
            return store.series(KILN, FIELD, start, end)

        statement = (
            f'SELECT "value","quality" FROM {quote_ident(FIELD)} WHERE "asset" = '
            f"{quote_string(KILN)} AND time >= {int_literal(start)} AND time < {int_literal(end)}"
        )
        # identity, as the store asks: influxd's gzip would dominate both timings
        client = httpx.Client(
            base_url=server.http, timeout=300, headers={"Accept-Encoding": "identity"}
        )

        def raw(accept: str, chunked: bool):
            params = {"db": "bench", "epoch": "ns"}
            if chunked:
                params |= {"chunked": "true", "chunk_size": "100000"}
            size = 0
            with client.stream(
                "POST", "/query", params=params, data={"q": statement}, headers={"Accept": accept}
            ) as resp:
                resp.raise_for_status()
                for data in resp.iter_bytes(1 << 20):
                    size += len(data)
            return size

        t_store, got = best_of(args.repeat, series)
        assert len(got) == n and np.array_equal(got.values, values)  # type: ignore[arg-type]
        assert np.array_equal(got.time_ns, times)  # type: ignore[union-attr]
        t_csv, csv_bytes = best_of(args.repeat, lambda: raw("application/csv", True))
        t_json, json_bytes = best_of(args.repeat, lambda: raw("application/json", False))
        t_down, down = best_of(
            args.repeat,
            lambda: store.series(KILN, FIELD, start, end, window_ns=60 * STEP, aggregate="mean"),
        )
        report = {
            "benchmark": "read_series",
            "backend": "influxdb-1.x",
            "points": n,
            "write_points_per_s": round(n / write_s),
            "store_series_s": round(t_store, 3),
            "store_series_points_per_s": round(n / t_store),
            "raw_csv_download_s": round(t_csv, 3),
            "raw_csv_bytes": csv_bytes,
            "raw_json_download_s": round(t_json, 3),
            "raw_json_bytes": json_bytes,
            "store_series_downsampled_1min_s": round(t_down, 3),
            "downsampled_points": len(down),  # type: ignore[arg-type]
            "ratio_raw_vs_store": round(t_csv / t_store, 2),
        }
        client.close()
        store.close()
    finally:
        server.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
