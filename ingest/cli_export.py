"""``kilnworks export --store URL [--asset PATH] [--field NAME] [--start T] [--end T] [-o FILE]``:
readings out of a store as CSV, in the canonical form of ``ingest.csvio`` (re-importable).

Rows come series by series (asset, then field, in sorted order), each oldest first (points of
one series sharing a time: by unit). A store that is an :class:`ingest.contracts.RawReader`
(InfluxDB v1, SQLite) exports each value with its type, quality and unit, read
``--page-size`` readings per query (``ingest.paging``), so memory stays flat however long the
series and the output is the same whatever the page size. For a store without a raw read the
values come from one ``series()`` call per series (numbers as floats, quality kept, no unit)
and a note on stderr says so.

Exit status: 0 done (even if nothing matched: a note says so); 2 bad arguments or store URL;
3 store unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import numpy as np

from core.reading import Quality, Reading
from ingest.contracts import RawReader, Store, StoreUnavailable
from ingest.csvio import parse_time, write_header, write_rows
from ingest.paging import DEFAULT_PAGE_SIZE, check_page_size
from ingest.stores import StoreURLError, open_store, redact

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 2, 3
# InfluxDB's own time limits (1677..2262): the widest range any store can hold.
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806


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
    p.add_argument(
        "--page-size", type=_page_size, default=DEFAULT_PAGE_SIZE, metavar="N",
        help=f"readings per query (default {DEFAULT_PAGE_SIZE:,}); memory grows with it, the "
        "output does not change",
    )  # fmt: skip
    return p


def _page_size(text: str) -> int:
    try:
        return check_page_size(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}") from None


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
    store: Store,
    asset: str,
    field: str,
    start_ns: int,
    end_ns: int,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[Reading]:
    """All readings of one series in ``[start_ns, end_ns)``, oldest first: page by page from
    a :class:`RawReader`, else from one ``series()`` read."""
    if isinstance(store, RawReader):
        return store.iter_readings(asset, field, start_ns, end_ns, page_size=page_size)
    s = store.series(asset, field, start_ns, end_ns)
    return (
        Reading(asset, field, _plain(v), Quality(int(q)), int(t), int(t))
        for t, v, q in zip(s.time_ns, s.values, s.quality, strict=True)
    )


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
    page_size: int = DEFAULT_PAGE_SIZE,
) -> int:
    """Write the selected readings as CSV to ``out`` (opened with ``newline=""``); returns
    how many rows. ``page_size``: readings per query (memory), never changes the output."""
    check_page_size(page_size)
    writer = write_header(out)
    n = 0
    for a, f in selected_series(store, asset, fields):
        rows = readings_of(store, a, f, start_ns, end_ns, page_size=page_size)
        n += write_rows(writer, rows, time_format=time_format)
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
        if not isinstance(store, RawReader):
            print(
                "export: this store has no raw read; values come from series() as numbers or "
                "text, without units",
                file=err,
            )
        try:
            options = dict(
                asset=args.asset, fields=args.field, start_ns=start, end_ns=end,
                time_format=args.time_format, page_size=args.page_size,
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
