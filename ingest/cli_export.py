"""``kilnworks export --store URL [--asset PATH] [--field NAME] [--start T] [--end T] [-o FILE]``:
readings out of a store as CSV, in the canonical form of ``ingest.csvio`` (re-importable).

Rows come series by series (asset, then field, in sorted order), each oldest first, read in
pages so memory stays flat. A store with a raw ``readings(asset, field, start_ns, end_ns,
limit=...)`` read (the SQLite store) exports each value with its type, quality and unit; for
a store without one the values come from ``series()`` (numbers as floats, quality kept, no
unit) and a note on stderr says so.

Exit status: 0 done (even if nothing matched: a note says so); 2 bad arguments or store URL;
3 store unreachable.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import numpy as np

from core.reading import Quality, Reading, ReadingBatch
from ingest.contracts import Store, StoreUnavailable
from ingest.csvio import parse_time, write_header, write_rows
from ingest.stores import StoreURLError, open_store, redact

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 2, 3
# InfluxDB's own time limits (1677..2262): the widest range any store can hold.
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806
PAGE = 50_000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kilnworks export",
        description="Write readings from a store as CSV (time,asset,field,value,unit,quality), "
        "ready for a spreadsheet or for kilnworks import.",
    )
    p.add_argument(
        "--store", default=os.environ.get("KILNWORKS_STORE"), help="store URL (default: "
        "$KILNWORKS_STORE)",
    )  # fmt: skip
    p.add_argument(
        "--asset", help="an asset path, or the start of one (xinghai/plant-1 = that whole site)"
    )
    p.add_argument("--field", action="append", help="only this field (repeatable)")
    p.add_argument("--start", help="from this time, inclusive (RFC 3339, a date, or ns)")
    p.add_argument("--end", help="up to this time, exclusive (RFC 3339, a date, or ns)")
    p.add_argument("-o", "--output", default="-", help="output file (default: standard output)")
    p.add_argument(
        "--time-format", choices=("rfc3339", "ns"), default="rfc3339",
        help="times as RFC 3339 UTC with nanoseconds (default) or integer nanoseconds",
    )  # fmt: skip
    return p


def selected_series(
    store: Store, asset: str | None, fields: list[str] | None
) -> list[tuple[str, str]]:
    """(asset, field) pairs matching an asset path or path prefix (whole segments) and fields."""
    prefix = (asset or "").rstrip("/")
    pairs = store.list_series(prefix)
    return [
        (a, f)
        for a, f in pairs
        if (not prefix or a == prefix or a.startswith(prefix + "/")) and (not fields or f in fields)
    ]


def readings_of(
    store: Store, asset: str, field: str, start_ns: int, end_ns: int
) -> Iterator[Reading]:
    """All readings of one series in ``[start_ns, end_ns)``, oldest first, page by page."""
    raw = getattr(store, "readings", None)
    # A raw read with a ``limit`` is paged; one without is read in one go.
    paged = raw is not None and "limit" in inspect.signature(raw).parameters
    while start_ns < end_ns:
        if raw is not None:
            got = (
                raw(asset, field, start_ns, end_ns, limit=PAGE)
                if paged
                else raw(asset, field, start_ns, end_ns)
            )
            page = got.to_readings() if isinstance(got, ReadingBatch) else list(got)
        else:
            s = store.series(asset, field, start_ns, end_ns)
            page = [
                Reading(asset, field, _plain(v), Quality(int(q)), int(t), int(t))
                for t, v, q in zip(s.time_ns, s.values, s.quality, strict=True)
            ]
        yield from page
        if not paged or len(page) < PAGE:
            return
        start_ns = page[-1].source_time_ns + 1


def _plain(value: object) -> float | str:
    return float(value) if isinstance(value, np.floating | float) else str(value)


def export_csv(
    store: Store,
    out: TextIO,
    *,
    asset: str | None = None,
    fields: list[str] | None = None,
    start_ns: int = MIN_TIME_NS,
    end_ns: int = MAX_TIME_NS,
    time_format: str = "rfc3339",
) -> int:
    """Write the selected readings as CSV to ``out`` (opened with ``newline=""``); returns
    how many rows."""
    writer = write_header(out)
    n = 0
    for a, f in selected_series(store, asset, fields):
        n += write_rows(writer, readings_of(store, a, f, start_ns, end_ns), time_format=time_format)
    return n


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = sys.stderr
    if not args.store:
        print("kilnworks export: --store URL is required (or set KILNWORKS_STORE)", file=err)
        return EXIT_USAGE
    try:
        start = parse_time(args.start) if args.start else MIN_TIME_NS
        end = parse_time(args.end) if args.end else MAX_TIME_NS
    except ValueError as exc:
        print(f"kilnworks export: {exc}", file=err)
        return EXIT_USAGE
    try:
        store = open_store(args.store)
    except StoreURLError as exc:
        print(f"kilnworks export: {exc}", file=err)
        return EXIT_USAGE
    try:
        if not hasattr(store, "readings"):
            print(
                "export: this store has no raw read; values come from series() as numbers or "
                "text, without units",
                file=err,
            )
        try:
            options = dict(
                asset=args.asset, fields=args.field, start_ns=start, end_ns=end,
                time_format=args.time_format,
            )  # fmt: skip
            if args.output == "-":
                sys.stdout.reconfigure(newline="")  # type: ignore[attr-defined]
                n = export_csv(store, sys.stdout, **options)
                sys.stdout.flush()
            else:
                with open(args.output, "w", newline="", encoding="utf-8") as out:
                    n = export_csv(store, out, **options)
        except StoreUnavailable as exc:
            print(f"kilnworks export: {redact(args.store)} unreachable: {exc}", file=err)
            return EXIT_UNAVAILABLE
        except OSError as exc:
            print(f"kilnworks export: cannot write {args.output}: {exc.strerror}", file=err)
            return EXIT_USAGE
        if n == 0:
            print("export: no readings matched", file=err)
        else:
            print(f"export: {n:,} readings written", file=err)
        return EXIT_OK
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
