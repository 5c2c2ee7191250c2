"""Line-protocol encoding rate: the batch encoder vs a plain f-string loop vs influxdb-client.

All three produce the kilnworks schema (docs/contributing.md) for the same readings, in the
same run, and the encoder's output is checked byte for byte against the f-string loop's:

* ``batch``: :func:`ingest.lineprotocol.encode_batch` on a columnar ``ReadingBatch`` (what
  the stores call);
* ``fstring``: the baseline - a Python loop with one f-string per reading, ``repr`` floats and
  the escaped series prefix cached per series (the fastest obvious hand-written code);
* ``influxdb_client_point``: ``influxdb_client.Point(...).to_line_protocol()`` per reading
  (measured on a slice of ``--point-sample`` readings and reported as a rate).

Two value distributions: ``sensor`` (thermocouples at 0.1 °C resolution, what kilns send)
and ``random`` (full 17-digit doubles, the worst case for float formatting). 24 series (a
kiln's thermocouples), one reading per series per second. Best of ``--repeat`` runs,
the encoder and the loop alternating.

    python bench/lineprotocol_encode.py            # 1M readings
    python bench/lineprotocol_encode.py --quick    # 50k, for CI smoke runs

Prints one JSON object; ``ratio_batch_vs_fstring`` > 1 means the encoder is faster.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.reading import ReadingBatch  # noqa: E402
from ingest.lineprotocol import encode_batch, series_prefix  # noqa: E402

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000


def make_batch(n: int, distribution: str, seed: int = 7) -> ReadingBatch:
    rng = np.random.default_rng(seed)
    fields = np.array(
        [f"zone{z}_tc{t}_temperature_c" for z in range(1, 13) for t in (1, 2)], dtype=object
    )
    series = np.arange(n) % len(fields)
    values = 1200.0 + rng.normal(0.0, 40.0, n)
    if distribution == "sensor":
        values = np.round(values, 1)
    return ReadingBatch.from_floats(
        KILN,
        fields[series],
        values,
        T0 + (np.arange(n) // len(fields)) * 1_000_000_000,
        quality=rng.choice([0, 0, 0, 1], n).astype(np.uint8),
        received_time_ns=T0 + 123_456,
        unit="°C",
    )


def encode_fstring(batch: ReadingBatch) -> bytes:
    prefixes: dict[tuple[str, str, str], str] = {}
    lines = []
    append = lines.append
    for asset, field, unit, v, q, r, t in zip(
        batch.asset.tolist(),
        batch.field.tolist(),
        batch.unit.tolist(),
        batch.number.tolist(),
        batch.quality.tolist(),
        batch.received_time_ns.tolist(),
        batch.source_time_ns.tolist(),
        strict=True,
    ):
        key = (asset, field, unit)
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = series_prefix(asset, field, unit)
        append(f"{prefix}{v!r},quality={q}i,received_ns={r}i {t}")
    return "\n".join(lines).encode("utf-8")


def encode_points(batch: ReadingBatch) -> bytes:
    from influxdb_client import Point, WritePrecision

    lines = []
    for i in range(len(batch)):
        enterprise, site, line, _ = str(batch.asset[i]).split("/")
        p = (
            Point(str(batch.field[i]))
            .tag("asset", batch.asset[i])
            .tag("enterprise", enterprise)
            .tag("line", line)
            .tag("site", site)
            .tag("unit", batch.unit[i])
            .field("value", float(batch.number[i]))
            .field("quality", int(batch.quality[i]))
            .field("received_ns", int(batch.received_time_ns[i]))
            .time(int(batch.source_time_ns[i]), WritePrecision.NS)
        )
        lines.append(p.to_line_protocol())
    return "\n".join(lines).encode("utf-8")


def best_of(repeat: int, fn, *args) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50k readings (CI smoke run)")
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--point-sample", type=int, default=100_000)
    args = ap.parse_args(argv)
    n = 50_000 if args.quick else args.readings
    sample = min(n, 10_000 if args.quick else args.point_sample)
    report: dict[str, object] = {
        "benchmark": "lineprotocol_encode",
        "readings": n,
        "series": 24,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for distribution in ("sensor", "random"):
        batch = make_batch(n, distribution)
        # Alternate the two so a burst of load on the shared machine hits both alike.
        t_batch = t_fstring = float("inf")
        for _ in range(args.repeat):
            t, encoded = best_of(1, encode_batch, batch)
            t_batch = min(t_batch, t)
            t, baseline = best_of(1, encode_fstring, batch)
            t_fstring = min(t_fstring, t)
        assert encoded.body == baseline, "encoder and baseline disagree"  # type: ignore[union-attr]
        t_point, _ = best_of(1, encode_points, batch.take(slice(0, sample)))
        report[distribution] = {
            "batch_readings_per_s": round(n / t_batch),
            "fstring_readings_per_s": round(n / t_fstring),
            "influxdb_client_point_readings_per_s": round(sample / t_point),
            "ratio_batch_vs_fstring": round(t_fstring / t_batch, 2),
            "ratio_batch_vs_point": round((t_point / sample) / (t_batch / n), 1),
            "bytes_per_reading": round(len(baseline) / n, 1),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
