"""Benchmark: the durable write path into InfluxDB, and reading a series back into NumPy.

Prints one JSON object. Measures, in the same run:

* ``write``: N readings (100 thermocouple series of 10 kilns, 1 s apart) into a real InfluxDB
  1.x through the spool and the forwarder (every batch fsynced to the spool before it is
  forwarded) against the baseline of raw HTTP POSTs of line protocol encoded *before* the
  clock starts, 5000 lines per POST, into a separate database. ``ratio`` = writer rate / raw
  rate (target >= 0.70). The writer's clock runs from the first ``put`` until the spool is
  empty and includes encoding. The forwarder keeps ``--in-flight`` writes going (default 2),
  so the same bodies POSTed over two concurrent connections are reported too.
* ``spool_small_puts``: puts of 5 readings from 1 thread (one fsync each: the baseline) and
  from 8 threads (group commit: puts that arrive during a commit share the next fsync).
* ``read_sqlite``: N points of one series from the SQLite store into NumPy arrays via
  ``SQLiteStore.series``, against a plain ``fetchall`` of the same rows (the baseline: what
  any SQLite reader pays before it even builds arrays).
* ``read_influxdb``: N points of one series via ``InfluxV1Store.series``, against the bare
  HTTP query that returns the same rows as CSV (no parsing).

Usage: ``python3 bench/write_path.py [--quick] [--n N]``. InfluxDB is started on a free
loopback port with ``tests.servers`` (needs Debian's ``influxd``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.reading import ReadingBatch
from ingest.lineprotocol import encode_batch
from ingest.spool import Spool
from ingest.store_sqlite import SQLiteStore
from ingest.stores import open_store
from ingest.writer import Forwarder
from tests.servers import InfluxDB, wait_until

T0 = 1_767_225_600_000_000_000
S = 1_000_000_000
BATCH = 5000


def workshop_batches(n: int) -> list[ReadingBatch]:
    """``n`` readings as the edge would put them: one batch per scan of 100 series x 50 s."""
    rng = np.random.default_rng(1)
    series = [(f"xinghai/plant-1/firing-shop/kiln-{k}", f"zone{z}_tc1_temperature_c")
              for k in range(10) for z in range(10)]  # fmt: skip
    per_scan = BATCH // len(series)
    out = []
    for b in range(n // BATCH):
        assets = np.empty(BATCH, dtype=object)
        fields = np.empty(BATCH, dtype=object)
        times = np.empty(BATCH, dtype=np.int64)
        for j, (a, f) in enumerate(series):
            sl = slice(j * per_scan, (j + 1) * per_scan)
            assets[sl], fields[sl] = a, f
            times[sl] = T0 + (b * per_scan + np.arange(per_scan)) * S
        values = np.round(900 + 400 * rng.random(BATCH), 1)  # thermocouples report 0.1 °C
        out.append(ReadingBatch.from_floats(assets, fields, values, times, received_time_ns=T0))
    return out


def count(influx: InfluxDB, db: str) -> int:
    total = 0
    res = influx.query('SELECT COUNT("value") FROM /.*/', db)["results"][0]
    for s in res.get("series", []):
        total += int(s["values"][0][1])
    return total


def bench_raw(influx: InfluxDB, batches: list[ReadingBatch], connections: int = 1) -> float:
    """Sequential POSTs (``connections=1``, the baseline the target refers to), or the same
    bodies spread over concurrent connections (a fairer match for ``in_flight=2``)."""
    db = influx.create_database(f"raw{connections}")
    bodies = [encode_batch(b).body for b in batches]  # encoded before the clock starts
    with httpx.Client(base_url=influx.http, timeout=60) as client:

        def post(body: bytes) -> None:
            r = client.post("/write", params={"db": db, "precision": "ns"}, content=body)
            r.raise_for_status()

        t = time.perf_counter()
        if connections == 1:
            for body in bodies:
                post(body)
        else:
            with ThreadPoolExecutor(connections) as pool:
                list(pool.map(post, bodies))
        elapsed = time.perf_counter() - t
    assert count(influx, db) == sum(map(len, batches))
    return elapsed


def bench_writer(influx: InfluxDB, batches: list[ReadingBatch], tmp: Path, in_flight: int) -> float:
    db = influx.create_database(f"spooled{in_flight}")
    store = open_store(influx.store_url(db))
    with Spool(tmp / f"spool{in_flight}.db") as spool:
        fwd = Forwarder(spool, store, batch_size=BATCH, flush_interval_s=0.2, in_flight=in_flight)
        fwd.start()
        t = time.perf_counter()
        for b in batches:
            spool.put(b)
        assert fwd.flush(600)
        elapsed = time.perf_counter() - t
        fwd.stop(drain=False)
    store.close()
    assert count(influx, db) == sum(map(len, batches))
    return elapsed


def bench_small_puts(tmp: Path, puts: int) -> dict:
    """Many sources putting small batches (5 readings): one thread (one fsync per put, the
    baseline) against 8 threads, whose puts the spool group-commits."""
    out = {}
    for threads in (1, 8):
        with Spool(tmp / f"small{threads}.db") as spool:
            per = puts // threads

            def run(k: int, spool: Spool = spool, per: int = per) -> None:
                for j in range(per):
                    start = (k * per + j) * 5
                    spool.put(ReadingBatch.from_floats(
                        "xinghai/plant-1/press-shop/press-1", "cycle_count",
                        np.arange(start, start + 5, dtype=np.float64),
                        T0 + np.arange(start, start + 5, dtype=np.int64), received_time_ns=T0,
                    ))  # fmt: skip

            workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
            t = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - t
            out[f"threads_{threads}_puts_per_s"] = round(per * threads / elapsed)
            out[f"threads_{threads}_commits"] = spool.commits
    out["ratio"] = round(out["threads_8_puts_per_s"] / out["threads_1_puts_per_s"], 2)
    return out


def one_series(n: int) -> ReadingBatch:
    values = np.round(20 + 1300 * np.random.default_rng(2).random(n), 1)
    return ReadingBatch.from_floats(
        "xinghai/plant-1/firing-shop/kiln-1", "zone1_tc1_temperature_c", values,
        T0 + np.arange(n, dtype=np.int64) * S, received_time_ns=T0,
    )  # fmt: skip


def bench_read_sqlite(n: int, tmp: Path) -> dict:
    batch = one_series(n)
    store = SQLiteStore(tmp / "store.db")
    t = time.perf_counter()
    for i in range(0, n, 100_000):
        store.write(batch.take(slice(i, i + 100_000)))
    write_s = time.perf_counter() - t
    asset, field = batch.asset[0], batch.field[0]
    t = time.perf_counter()
    got = store.series(asset, field, T0, T0 + n * S)
    read_s = time.perf_counter() - t
    assert len(got) == n and np.array_equal(got.values, batch.number)
    with sqlite3.connect(tmp / "store.db") as db:
        t = time.perf_counter()
        rows = db.execute(
            "SELECT time_ns, value, quality FROM point WHERE series_id = 1 "
            "AND time_ns >= ? AND time_ns < ? ORDER BY time_ns",
            (T0, T0 + n * S),
        ).fetchall()
        base_s = time.perf_counter() - t
    assert len(rows) == n
    store.close()
    return {
        "points": n, "write_s": round(write_s, 3), "write_points_per_s": round(n / write_s),
        "series_s": round(read_s, 3), "points_per_s": round(n / read_s),
        "baseline_fetchall_s": round(base_s, 3), "ratio_vs_fetchall": round(base_s / read_s, 2),
    }  # fmt: skip


def bench_read_influx(influx: InfluxDB, n: int) -> dict:
    db = influx.create_database("read")
    store = open_store(influx.store_url(db))
    batch = one_series(n)
    for i in range(0, n, 50_000):
        store.write(batch.take(slice(i, i + 50_000)))
    asset, field = batch.asset[0], batch.field[0]
    wait_until(lambda: count(influx, db) == n, 60, "points to be queryable")
    t = time.perf_counter()
    got = store.series(asset, field, T0, T0 + n * S)
    read_s = time.perf_counter() - t
    assert len(got) == n and np.array_equal(got.values, batch.number)
    q = (f'SELECT "value","quality" FROM "{field}" WHERE "asset" = \'{asset}\' '
         f"AND time >= {T0} AND time < {T0 + n * S}")  # fmt: skip
    t = time.perf_counter()
    resp = httpx.post(
        f"{influx.http}/query", data={"q": q, "db": db, "epoch": "ns"},
        headers={"Accept": "application/csv"}, timeout=120,
    )  # fmt: skip
    resp.raise_for_status()
    base_s = time.perf_counter() - t
    store.close()
    return {
        "points": n, "series_s": round(read_s, 3), "points_per_s": round(n / read_s),
        "baseline_http_csv_s": round(base_s, 3), "ratio_vs_http": round(base_s / read_s, 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="50,000 readings instead of 1,000,000")
    p.add_argument("--in-flight", type=int, default=2, help="forwarder writes in flight (2)")
    p.add_argument("--n", type=int, help="readings to write and read (multiple of 5000)")
    args = p.parse_args(argv)
    n = args.n or (50_000 if args.quick else 1_000_000)
    n -= n % BATCH
    batches = workshop_batches(n)
    with tempfile.TemporaryDirectory(prefix="kilnworks-bench-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "influxdb").mkdir()
        influx = InfluxDB(tmp / "influxdb")
        influx.start()
        try:
            raw_s = bench_raw(influx, batches)
            raw2_s = bench_raw(influx, batches, connections=2)
            writer_s = bench_writer(influx, batches, tmp, args.in_flight)
            read_influx = bench_read_influx(influx, n)
        finally:
            influx.close()
        read_sqlite = bench_read_sqlite(n, tmp)
        small_puts = bench_small_puts(tmp, 400 if args.quick else 1600)
    result = {
        "benchmark": "write_path",
        "readings": n,
        "cpus": os.cpu_count(),
        "write": {
            "raw_http_s": round(raw_s, 3),
            "raw_readings_per_s": round(n / raw_s),
            "spool_forwarder_s": round(writer_s, 3),
            "spool_forwarder_readings_per_s": round(n / writer_s),
            "ratio": round(raw_s / writer_s, 3),
            "raw_http_2_connections_s": round(raw2_s, 3),
            "ratio_vs_raw_2_connections": round(raw2_s / writer_s, 3),
            "in_flight": args.in_flight,
            "target_ratio": 0.7,
        },
        "spool_small_puts": small_puts,
        "read_sqlite": read_sqlite,
        "read_influxdb": read_influx,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
