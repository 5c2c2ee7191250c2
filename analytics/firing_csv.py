"""Read a kiln controller's CSV export of one firing into arrays (for ``kilnworks report firing``).

Format: a header row ``time,<thermocouple>,<thermocouple>,...``; ``time`` is RFC 3339 with a UTC
offset (``2026-03-01T06:00:00Z``, ``...+08:00``, fractional seconds kept to the nanosecond) or
integer epoch nanoseconds; each other column is one thermocouple in °C
(``zone1_tc1_temperature_c``); an empty cell is a missing sample.

Bad input never loses the rest of the file: a row whose time cannot be read is skipped, a cell
that is not a finite number becomes missing; both are counted in :class:`CsvFiring` with the
first few problems (line number and text) so the command can say what it ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
MAX_PROBLEMS = 10


class CsvError(ValueError):
    """The file cannot be used at all (missing, no header, no time column, no usable row)."""


@dataclass(frozen=True)
class CsvFiring:
    time_ns: np.ndarray  # int64 (N,), sorted
    names: tuple[str, ...]  # thermocouple columns
    temps_c: np.ndarray  # float64 (K, N), NaN = missing
    bad_rows: int = 0
    bad_cells: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)


def parse_time_ns(text: str) -> int:
    """RFC 3339 (with offset) or integer epoch ns -> int ns; ValueError says what was wrong."""
    s = text.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    m = _RFC3339.match(s)
    if not m:
        raise ValueError(f"time {text!r}: expected RFC 3339 with offset or epoch nanoseconds")
    date, clock, frac, offset = m.groups()
    tz = "+00:00" if offset in ("Z", "z") else offset
    whole = dt.datetime.fromisoformat(f"{date}T{clock}{tz}")
    ns = int(whole.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac.ljust(9, "0"))
    return ns


def read_firing_csv(path: str | Path) -> CsvFiring:
    """Read the CSV at ``path``; raises :class:`CsvError` only when nothing usable is in it."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CsvError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvError(
                f"{path}: empty file (expected a header: time,<thermocouple>,...)"
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvError(f"{path}: line 1: unreadable header ({exc})") from None
        header = [h.strip() for h in header]
        if not header or header[0].lower() != "time":
            raise CsvError(f"{path}: line 1: the first column must be 'time', got {header[:1]}")
        names = tuple(header[1:])
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise CsvError(f"{path}: line 1: expected unique, non-empty thermocouple columns")
        times: list[int] = []
        rows: list[list[float]] = []
        bad_rows = bad_cells = 0
        problems: list[str] = []

        def note(text: str) -> None:
            if len(problems) < MAX_PROBLEMS:
                problems.append(text)

        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                line += 1
                bad_rows += 1
                note(f"line {line}: unreadable ({exc})")
                continue
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            try:
                t = parse_time_ns(row[0])
            except ValueError as exc:
                bad_rows += 1
                note(f"line {line}: {exc}; row skipped")
                continue
            values = [math.nan] * len(names)
            if len(row) - 1 > len(names):
                bad_cells += len(row) - 1 - len(names)
                note(f"line {line}: {len(row) - 1} values for {len(names)} columns; extra ignored")
            for i, cell in enumerate(row[1 : len(names) + 1]):
                cell = cell.strip()
                if not cell:
                    continue
                try:
                    v = float(cell)
                except ValueError:
                    v = math.nan
                if not math.isfinite(v):
                    bad_cells += 1
                    note(f"line {line}: {names[i]} = {cell!r} is not a finite number; missing")
                    continue
                values[i] = v
            times.append(t)
            rows.append(values)
    if not times:
        detail = f" ({problems[0]})" if problems else ""
        raise CsvError(f"{path}: no usable data row{detail}")
    t_arr = np.asarray(times, dtype=np.int64)
    y = np.asarray(rows, dtype=np.float64).T.copy()
    order = np.argsort(t_arr, kind="stable")  # exports are sometimes out of order; fix, not fail
    return CsvFiring(t_arr[order], names, y[:, order], bad_rows, bad_cells, tuple(problems))
