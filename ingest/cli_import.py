"""``kilnworks import FILE --store URL``: backfill a store from CSV (format: ``ingest.csvio``).

Streams the file in chunks (memory stays flat however many years of kiln-controller exports it
holds), writes each chunk with ``store.write``, shows progress on stderr, and reports every
refused row with its line number while importing all the good ones. Re-running an import is
safe: a reading with the same asset, field and time overwrites itself.

Exit status: 0 every row imported; 1 some rows refused (the others imported); 2 the command
could not start (bad arguments, unreadable file or header, bad store URL); 3 the store stayed
unreachable or failed (rows before the reported line were imported; re-run to finish).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import BinaryIO, TextIO

from ingest.contracts import Store, StoreUnavailable
from ingest.csvio import Chunk, CSVFormatError, RowError, read_chunks
from ingest.stores import StoreURLError, open_store, redact

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kilnworks import",
        description=(
            "Load readings from a CSV file (header time,asset,field,value[,unit][,quality]) "
            "into a store. Rows that cannot be read are listed with their line numbers; all "
            "other rows are imported. Safe to re-run: the same reading overwrites itself."
        ),
    )
    p.add_argument("file", help="CSV file to import, or - for standard input")
    p.add_argument(
        "--store",
        default=os.environ.get("KILNWORKS_STORE"),
        help="store URL, e.g. sqlite:///kilnworks.db or influxdb://host:8086/plant "
        "(default: $KILNWORKS_STORE)",
    )
    p.add_argument("--chunk-rows", type=int, default=20_000, help="rows per write (20000)")
    p.add_argument(
        "--show-errors", type=int, default=50, help="refused rows to list on stderr (50)"
    )
    p.add_argument(
        "--rejects", metavar="FILE", help="also write every refused row's line and reason as CSV"
    )
    p.add_argument("--retries", type=int, default=8, help="retries while the store is down (8)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary")
    return p


class _Progress:
    """Prints ``rows, %, rows/s`` on stderr at most once a second."""

    def __init__(self, err: TextIO, total_bytes: int | None, position: Callable[[], int]) -> None:
        self.err, self.total, self.position = err, total_bytes, position
        self.start = self.last = time.monotonic()

    def update(self, rows: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        share = ""
        if self.total:
            share = f" ({min(100.0, 100.0 * self.position() / self.total):.0f}%)"
        print(f"import: {rows:,} rows read{share}, {rate:,.0f} rows/s", file=self.err, flush=True)


def _write_with_retry(
    store: Store, chunk: Chunk, retries: int, err: TextIO, sleep: Callable[[float], None]
) -> list[RowError]:
    """Write one chunk; returns the rows the store refused (as RowErrors by line)."""
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            result = store.write(chunk.batch)
            break
        except StoreUnavailable as exc:
            if attempt == retries:
                raise
            print(f"import: store unavailable ({exc}); retry in {delay:.1f} s", file=err)
            sleep(delay)
            delay = min(delay * 2, 30.0)
    if not result.rejected:
        return []
    line_of = {
        (r.asset, r.field, r.source_time_ns): line
        for r, line in zip(chunk.batch.to_readings(), chunk.lines, strict=True)
    }
    return [
        RowError(line_of.get((x.reading.asset, x.reading.field, x.reading.source_time_ns), 0),
                 f"refused by the store: {x.reason}")
        for x in result.rejected
    ]  # fmt: skip


def import_csv(
    stream: TextIO,
    store: Store,
    *,
    name: str,
    err: TextIO,
    chunk_rows: int = 20_000,
    show_errors: int = 50,
    rejects: csv.Writer | None = None,  # type: ignore[name-defined]
    retries: int = 8,
    progress: _Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """Import ``stream`` into ``store``; returns ``(imported, refused)``. Raises
    CSVFormatError (nothing imported) or StoreUnavailable (after ``retries``)."""
    imported = refused = 0
    for chunk in read_chunks(stream, name=name, chunk_rows=chunk_rows):
        errors = list(chunk.errors)
        if len(chunk.batch):
            try:
                store_errors = _write_with_retry(store, chunk, retries, err, sleep)
            except StoreUnavailable:
                first = chunk.lines[0] if chunk.lines else 0
                print(
                    f"import: {name}: store unreachable; rows before line {first} were "
                    f"imported ({imported:,}); re-run to finish (re-imports are harmless)",
                    file=err,
                )
                raise
            errors += store_errors
            imported += len(chunk.batch) - len(store_errors)
        for e in sorted(errors, key=lambda e: e.line):
            refused += 1
            if refused <= show_errors:
                print(f"{name}:{e.line}: {e.reason}", file=err)
            if rejects is not None:
                rejects.writerow((e.line, e.reason))
        if progress:
            progress.update(chunk.rows_read)
    if progress:
        progress.update(imported + refused, force=True)
    if refused > show_errors:
        print(f"import: ... and {refused - show_errors:,} more refused rows", file=err)
    return imported, refused


def main(argv: Sequence[str] | None = None, *, stdin: BinaryIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = sys.stderr
    if not args.store:
        print("kilnworks import: --store URL is required (or set KILNWORKS_STORE)", file=err)
        return EXIT_USAGE
    try:
        store = open_store(args.store)
    except StoreURLError as exc:
        print(f"kilnworks import: {exc}", file=err)
        return EXIT_USAGE
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        if args.file == "-":
            raw: BinaryIO = stdin or sys.stdin.buffer
            total = None
        else:
            try:
                raw = stack.enter_context(open(args.file, "rb"))
                total = os.fstat(raw.fileno()).st_size
            except OSError as exc:
                print(f"kilnworks import: cannot read {args.file}: {exc.strerror}", file=err)
                return EXIT_USAGE
        # utf-8-sig: spreadsheets put a byte-order mark in front of the header.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        progress = None
        if not args.quiet:
            progress = _Progress(err, total, lambda: raw.tell() if total else 0)
        rejects = None
        if args.rejects:
            rejects_file = stack.enter_context(
                open(args.rejects, "w", newline="", encoding="utf-8")
            )
            rejects = csv.writer(rejects_file, lineterminator="\r\n")
            rejects.writerow(("line", "reason"))
        try:
            imported, refused = import_csv(
                text, store, name=args.file, err=err, chunk_rows=args.chunk_rows,
                show_errors=args.show_errors, rejects=rejects, retries=args.retries,
                progress=progress,
            )  # fmt: skip
        except CSVFormatError as exc:
            print(f"kilnworks import: {exc}", file=err)
            return EXIT_USAGE
        except StoreUnavailable as exc:
            print(f"kilnworks import: {redact(args.store)} unreachable: {exc}", file=err)
            return EXIT_UNAVAILABLE
        except Exception as exc:  # a store failing in an unexpected way: say so, no traceback
            print(
                f"kilnworks import: {redact(args.store)} failed: {type(exc).__name__}: {exc}; "
                "rows written before it are kept, re-running is harmless",
                file=err,
            )
            return EXIT_UNAVAILABLE
        finally:
            text.detach()  # the ExitStack closes the file itself
        print(
            f"import: {imported:,} readings imported from {args.file} into "
            f"{redact(args.store)}; {refused:,} rows refused",
            file=err,
        )
        return EXIT_REJECTED if refused else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
