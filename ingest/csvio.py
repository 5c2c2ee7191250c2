"""The CSV exchange format of ``kilnworks import`` / ``kilnworks export`` (RFC 4180).

Header ``time,asset,field,value`` plus optional ``unit`` and ``quality`` (any order; an
unknown or repeated column is an error naming it). One reading per row:

* ``time``: RFC 3339 with up to 9 fractional digits (``2026-01-01T08:00:00.123456789Z``,
  ``...+08:00``), a date (``2026-01-01``, midnight UTC), or an integer of UTC nanoseconds.
* ``asset``: the ISA-95 path ``enterprise/site/line/asset``; ``field``: the field name.
* ``value``: a decimal number (``12``, ``-1.5``, ``6.02e23``) is a 64-bit float; ``true`` and
  ``false`` (lower case, exactly) are booleans; anything else is text. An integer-looking value
  is a float too (``12`` reads as 12.0 and exports as ``12.0``); one too large for a float to
  hold exactly (beyond 2**53, e.g. a 19-digit counter) is *rejected* rather than silently
  rounded. ``nan``/``inf`` and an empty value are rejected.
* ``unit``: free text (``°C``), may be empty; ``quality``: ``good`` (default when empty),
  ``uncertain``, ``bad`` (or 0, 1, 2).

Export writes the canonical form: all six columns, times as RFC 3339 UTC with exactly nine
fractional digits (or integers with ``--time-format ns``), floats in Python's shortest
round-trip form (``repr``), CRLF line ends. So ``export(import(x)) == x`` byte for byte for any
canonical ``x`` whose text values do not themselves look like numbers or booleans (a text
``"12"`` reads back as the number 12.0: the format cannot tell them apart). Stores that hold
integers (an OPC UA counter) export them as integers; they re-import as floats.

Reading streams: :func:`read_chunks` yields bounded chunks, so memory stays flat whatever the
file size. Each rejected row is reported with its line number (the physical line where the
record starts, counting the header as line 1).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TextIO

from core.reading import AssetPath, Quality, Reading, ReadingBatch, now_ns

REQUIRED = ("time", "asset", "field", "value")
OPTIONAL = ("unit", "quality")
HEADER = (*REQUIRED, *OPTIONAL)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"([Zz]|[+-]\d{2}:\d{2}))?"
)
_INTEGER_NS = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_EXACT_INT_LIMIT = 2**53
_QUALITY = {
    "good": Quality.GOOD, "uncertain": Quality.UNCERTAIN, "bad": Quality.BAD,
    "0": Quality.GOOD, "1": Quality.UNCERTAIN, "2": Quality.BAD,
}  # fmt: skip
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS = 1_000_000_000


class CSVFormatError(ValueError):
    """The file as a whole cannot be read (bad header, not UTF-8); nothing was imported."""


def parse_time(text: str) -> int:
    """UTC nanoseconds from RFC 3339 (up to ns), a date, or an integer of nanoseconds.
    Raises ValueError naming the text."""
    text = text.strip()
    if _INTEGER_NS.fullmatch(text):
        value = int(text)
        if not -(2**63) < value < 2**63:
            raise ValueError(f"time {text!r} does not fit 64-bit nanoseconds")
        return value
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ValueError(
            f"time {text!r}: expected RFC 3339 (2026-01-01T08:00:00.5Z) or integer nanoseconds"
        )
    year, month, day, hh, mm, ss, frac, offset = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise ValueError(f"time {text!r}: {exc}") from None
    if hh is None:
        return days * 86_400 * _NS
    h, mi, s = int(hh), int(mm), int(ss)
    if h > 23 or mi > 59 or s > 60:
        raise ValueError(f"time {text!r}: hour, minute or second out of range")
    # s == 60 (a leap second) folds onto the next second: POSIX time has no leap seconds.
    seconds = days * 86_400 + h * 3600 + mi * 60 + s
    if offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"time {text!r}: offset out of range")
        seconds -= sign * (oh * 3600 + om * 60)
    ns = seconds * _NS + (int(frac.ljust(9, "0")) if frac else 0)
    if not -(2**63) < ns < 2**63:
        raise ValueError(f"time {text!r} is outside the range of 64-bit nanoseconds")
    return ns


def format_time(ns: int) -> str:
    """RFC 3339 UTC with exactly nine fractional digits (the canonical export form)."""
    seconds, frac = divmod(int(ns), _NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"


def parse_value(text: str) -> float | bool | str:
    """A CSV value as float, bool or text (see the module docstring). ValueError if refused."""
    if text == "":
        raise ValueError("empty value")
    if text == "true":
        return True
    if text == "false":
        return False
    if _NUMBER.fullmatch(text):
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"value {text!r} is too large for a 64-bit float")
        if "." not in text and "e" not in text.lower():
            exact = int(text)
            if abs(exact) > _EXACT_INT_LIMIT and int(value) != exact:
                raise ValueError(
                    f"value {text!r} is an integer a 64-bit float cannot hold exactly "
                    f"(it would become {value!r})"
                )
        return value
    if text.strip().lower() in ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity"):
        raise ValueError(f"value {text!r} is not a finite number")
    return text


def format_value(value: object) -> str:
    """The canonical CSV text of a value (floats to the last bit, booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_quality(text: str) -> Quality:
    if text == "":
        return Quality.GOOD
    try:
        return _QUALITY[text.strip().lower()]
    except KeyError:
        raise ValueError(f"quality {text!r}: expected good, uncertain or bad") from None


@dataclass(slots=True)
class RowError:
    """A row that was not imported: its line number in the file and why."""

    line: int
    reason: str


@dataclass(slots=True)
class Chunk:
    """Up to ``chunk_rows`` parsed rows: the valid readings (with the line each came from),
    the rows refused, and how far into the file the reader is (for progress)."""

    batch: ReadingBatch
    lines: list[int]
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0


def read_header(reader: Iterator[list[str]], name: str) -> dict[str, int]:
    """Column positions by name. Raises :class:`CSVFormatError` naming the file and column."""
    try:
        header = next(reader)
    except StopIteration:
        raise CSVFormatError(
            f"{name}: empty file, expected a header {','.join(REQUIRED)}"
        ) from None
    except UnicodeDecodeError as exc:
        raise CSVFormatError(f"{name}: not UTF-8 text ({exc.reason})") from None
    if not header or header == [""]:
        raise CSVFormatError(f"{name}: line 1 is empty, expected a header {','.join(REQUIRED)}")
    names = [h.strip().lower() for h in header]
    if names and names[0].startswith("\ufeff"):
        names[0] = names[0][1:]  # a byte-order mark from a spreadsheet
    columns: dict[str, int] = {}
    for i, col in enumerate(names):
        if col not in HEADER:
            raise CSVFormatError(
                f"{name}: line 1: unknown column {col!r}; expected {','.join(REQUIRED)} "
                f"and optionally {','.join(OPTIONAL)}"
            )
        if col in columns:
            raise CSVFormatError(f"{name}: line 1: column {col!r} appears twice")
        columns[col] = i
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise CSVFormatError(f"{name}: line 1: missing column(s) {','.join(missing)}")
    return columns


def read_chunks(
    stream: TextIO,
    *,
    name: str = "<csv>",
    chunk_rows: int = 20_000,
    received_ns: Callable[[], int] = now_ns,
) -> Iterator[Chunk]:
    """Parse ``stream`` (opened with ``newline=""``) into chunks. Raises
    :class:`CSVFormatError` for a bad header or undecodable text; bad rows are reported in
    each chunk's ``errors`` and never stop the reading."""
    reader = csv.reader(stream, strict=True)
    columns = read_header(reader, name)
    width = len(columns)
    it, iv, ia, ifl = columns["time"], columns["value"], columns["asset"], columns["field"]
    iu, iq = columns.get("unit"), columns.get("quality")
    assets_ok: dict[str, str | None] = {}
    readings: list[Reading] = []
    lines: list[int] = []
    errors: list[RowError] = []
    rows_read = 0
    now = received_ns()
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, f"malformed CSV: {exc}"))
            continue
        except UnicodeDecodeError as exc:
            raise CSVFormatError(
                f"{name}: near line {line}: not UTF-8 text ({exc.reason})"
            ) from None
        rows_read += 1
        if not row or (len(row) == 1 and not row[0]):
            rows_read -= 1
            continue  # blank line
        try:
            if len(row) != width:
                raise ValueError(f"expected {width} fields, found {len(row)}")
            asset = row[ia]
            problem = assets_ok.get(asset, "?")
            if problem == "?":
                try:
                    AssetPath.parse(asset)
                    problem = None
                except ValueError as exc:
                    problem = str(exc)
                if len(assets_ok) < 100_000:  # bounded: memory stays flat
                    assets_ok[asset] = problem
            if problem:
                raise ValueError(problem)
            if not row[ifl]:
                raise ValueError("empty field name")
            readings.append(
                Reading(
                    asset, row[ifl], parse_value(row[iv]),
                    parse_quality(row[iq]) if iq is not None else Quality.GOOD,
                    parse_time(row[it]), now, row[iu] if iu is not None else "",
                )
            )  # fmt: skip
            lines.append(line)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
        if len(readings) + len(errors) >= chunk_rows:
            yield Chunk(ReadingBatch.from_readings(readings), lines, errors, rows_read)
            readings, lines, errors = [], [], []
            now = received_ns()
    if readings or errors:
        yield Chunk(ReadingBatch.from_readings(readings), lines, errors, rows_read)


def write_header(out: TextIO) -> csv.Writer:  # type: ignore[name-defined]
    """A CSV writer on ``out`` (opened with ``newline=""``) with the header written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    return writer


def write_rows(
    writer: csv.Writer,  # type: ignore[name-defined]
    readings: Iterable[Reading],
    *,
    time_format: str = "rfc3339",
) -> int:
    """Write readings in the canonical form; returns how many."""
    fmt_time = format_time if time_format == "rfc3339" else str
    n = 0
    for r in readings:
        writer.writerow(
            (
                fmt_time(r.source_time_ns), r.asset, r.field, format_value(r.value), r.unit,
                Quality(r.quality).name.lower(),
            )
        )  # fmt: skip
        n += 1
    return n
