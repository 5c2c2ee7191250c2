"""``kilnworks report oee``: OEE from CSV exports, for engineers away from the platform.

``analytics/cli.py`` (the ``report`` command) delegates ``report oee ...`` here; ``main`` accepts
its arguments with or without the leading ``oee``. Exit status: 0 on success (bad rows are
skipped, counted and listed on stderr), 2 when the input cannot be used at all (missing file,
broken calendar, no valid state row, bad option).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from analytics.oee import by_day, by_shift, compute_kiln_oee, compute_oee
from analytics.oee_model import (
    CycleCounts,
    Gradings,
    KilnPushes,
    StateTimeline,
    parse_result,
    state_code,
)
from analytics.oee_result import NS_PER_S, RATIOS, OeeResult
from analytics.shifts import ShiftCalendar
from core.config import ConfigError

FORMATS = """\
CSV formats (a header row is required; columns in any order; '#' lines are comments):
  states.csv   time,state[,reason]
               state: running, idle, setup, breakdown, starved, blocked, planned_stop,
               no_data (the state holds until the next row); reason: an integer code or a
               short text (texts get codes 1000, 1001, ... in order of appearance)
  counts.csv   time,good,reject          quantities made at that time (events or deltas)
          or   time,result               one cycle per row: good/ok or reject/ng
          or   time,good_total,reject_total   monotonic PLC counters (resets handled)
  pushes.csv   time,car[,quantity]       tunnel kiln: a car left the kiln (quantity: 1 car,
                                         or tonnes with --unit t)
  gradings.csv car,good,reject[,time]    pieces graded first-quality / rejected per car; the
                                         latest grading of a car (by time) counts
  time         ISO 8601 (2026-11-25T08:00:00+08:00; without an offset it is local time
               in --timezone, default the calendar's or UTC) or integer ns since 1970 UTC
"""

MAX_LISTED_ERRORS = 10


class InputError(Exception):
    """Input that cannot be used at all: the command prints it and exits with status 2."""


@dataclass
class _Problems:
    rows: list[str] = field(default_factory=list)

    def add(self, file: str, line: int, why: str) -> None:
        self.rows.append(f"{file}:{line}: {why}")


def _parse_time(text: str, tz: dt.tzinfo) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (moment - epoch) // dt.timedelta(microseconds=1) * 1000


def _rows(path: Path, required: Sequence[Sequence[str]]) -> tuple[list[str], list[tuple]]:
    """Header and (line number, row dict) pairs; InputError if the file or header is unusable."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        lines = (line for line in handle if not line.lstrip().startswith("#"))
        reader = csv.DictReader(lines)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if not any(all(c in header for c in cols) for cols in required):
            wanted = " or ".join(",".join(cols) for cols in required)
            raise InputError(f"{path}: expected a header with columns {wanted}, got {header}")
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader]
    return header, rows


def read_states(
    path: Path, tz: dt.tzinfo, problems: _Problems
) -> tuple[StateTimeline, dict[int, str]]:
    """Parse states.csv (see FORMATS). Rows out of order are sorted; two rows at the same
    time keep the later one. Returns the timeline and the names of text reason codes."""
    _, rows = _rows(path, [("time", "state")])
    times, states, reasons = [], [], []
    names: dict[str, int] = {}
    for line, row in rows:
        try:
            t = _parse_time(row.get("time") or "", tz)
            s = state_code(row.get("state") or "")
            raw = (row.get("reason") or "").strip()
            if not raw:
                r = 0
            elif raw.isdigit():
                r = int(raw)
            else:
                r = names.setdefault(raw, 1000 + len(names))
        except ValueError as exc:
            problems.add(path.name, line, str(exc))
            continue
        times.append(t)
        states.append(int(s))
        reasons.append(r)
    if not times:
        raise InputError(f"{path}: no valid state rows")
    t_arr = np.array(times, np.int64)
    order = np.argsort(t_arr, kind="stable")
    t_arr = t_arr[order]
    keep = np.concatenate((t_arr[1:] != t_arr[:-1], [True]))  # the last row at a time wins
    if not np.all(keep):
        problems.add(path.name, 0, f"{int(np.sum(~keep))} rows repeat an earlier time")
    timeline = StateTimeline(
        t_arr[keep],
        np.array(states, np.int8)[order][keep],
        np.array(reasons, np.int32)[order][keep],
    )
    return timeline, {code: text for text, code in names.items()}


def read_counts(path: Path, tz: dt.tzinfo, problems: _Problems) -> CycleCounts:
    """Parse counts.csv in any of the three forms of FORMATS; rows sorted by time."""
    header, rows = _rows(
        path, [("time", "good", "reject"), ("time", "result"), ("time", "good_total")]
    )
    counters = "good_total" in header
    per_cycle = "result" in header and "good" not in header
    times, good, reject = [], [], []
    for line, row in rows:
        try:
            t = _parse_time(row.get("time") or "", tz)
            if per_cycle:
                ok = parse_result(row.get("result") or "")
                g, r = float(ok), float(not ok)
            else:
                g = float(row.get("good_total" if counters else "good") or "nan")
                r = float(row.get("reject_total" if counters else "reject") or 0)
            if not (np.isfinite(g) and np.isfinite(r)) or g < 0 or r < 0:
                raise ValueError(f"expected counts >= 0, got good={g}, reject={r}")
        except ValueError as exc:
            problems.add(path.name, line, str(exc))
            continue
        times.append(t)
        good.append(g)
        reject.append(r)
    t_arr = np.array(times, np.int64)
    order = np.argsort(t_arr, kind="stable")
    g_arr, r_arr = np.array(good)[order], np.array(reject)[order]
    if counters:
        return CycleCounts.from_counters(t_arr[order], g_arr, r_arr)
    return CycleCounts(t_arr[order], g_arr, r_arr)


def read_pushes(path: Path, tz: dt.tzinfo, problems: _Problems) -> KilnPushes:
    """Parse pushes.csv (``time,car[,quantity]``); rows sorted by time."""
    _, rows = _rows(path, [("time", "car")])
    times, cars, qty = [], [], []
    for line, row in rows:
        try:
            t = _parse_time(row.get("time") or "", tz)
            car = int((row.get("car") or "").strip())
            q = float(row.get("quantity") or 1.0)
            if not np.isfinite(q) or q < 0:
                raise ValueError(f"expected a quantity >= 0, got {q}")
        except ValueError as exc:
            problems.add(path.name, line, str(exc))
            continue
        times.append(t)
        cars.append(car)
        qty.append(q)
    t_arr = np.array(times, np.int64)
    order = np.argsort(t_arr, kind="stable")
    return KilnPushes(t_arr[order], np.array(cars, np.int64)[order], np.array(qty)[order])


def read_gradings(path: Path, tz: dt.tzinfo, problems: _Problems) -> Gradings:
    """Parse gradings.csv (``car,good,reject[,time]``); without a time a grading counts as
    known from the start (``--as-of`` then has nothing to hide)."""
    _, rows = _rows(path, [("car", "good", "reject")])
    cars, good, reject, at = [], [], [], []
    for line, row in rows:
        try:
            car = int((row.get("car") or "").strip())
            g, r = float(row.get("good") or "nan"), float(row.get("reject") or 0)
            if not (np.isfinite(g) and np.isfinite(r)) or g < 0 or r < 0:
                raise ValueError(f"expected piece counts >= 0, got good={g}, reject={r}")
            when = (row.get("time") or "").strip()
            t = _parse_time(when, tz) if when else np.iinfo(np.int64).min
        except ValueError as exc:
            problems.add(path.name, line, str(exc))
            continue
        cars.append(car)
        good.append(g)
        reject.append(r)
        at.append(t)
    return Gradings(
        np.array(cars, np.int64), np.array(good), np.array(reject), np.array(at, np.int64)
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kilnworks report oee",
        description="OEE to ISO 22400-2 from a machine-state CSV and a counts CSV.",
        epilog=FORMATS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--states", type=Path, help="states.csv (time,state[,reason])")
    p.add_argument("--counts", type=Path, help="counts.csv (see below); presses")
    p.add_argument("--pushes", type=Path, help="pushes.csv: tunnel-kiln OEE instead of a press")
    p.add_argument("--gradings", type=Path, help="gradings.csv for --pushes (quality)")
    p.add_argument("--nameplate-per-h", type=float, help="kiln nameplate, cars (or t) per hour")
    p.add_argument("--unit", default="car", choices=("car", "t"), help="what --pushes counts")
    p.add_argument("--as-of", help="kiln: use only gradings known at this time")
    p.add_argument("--shifts", type=Path, help="shift calendar TOML (default: planned 24/7)")
    p.add_argument("--ideal-cycle-s", type=float, help="ideal cycle time per piece, seconds")
    p.add_argument(
        "--microstop-s", type=float, default=300.0, help="stops shorter than this are minor "
        "stops: a performance loss, not availability (default 300)",
    )  # fmt: skip
    p.add_argument(
        "--startup-s", type=float, default=0.0,
        help="rejects this soon after a setup or breakdown are start-up rejects (default 0)",
    )  # fmt: skip
    p.add_argument("--from", dest="start", help="window start (default: first state row)")
    p.add_argument("--to", dest="end", help="window end (default: last row of either file)")
    p.add_argument("--timezone", help="for times without an offset (default: calendar's, UTC)")
    p.add_argument("--by", choices=("shift", "day"), help="also break down per shift or day")
    p.add_argument("--asset", default="", help="asset path to label the result")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def _pct(value: float | None) -> str:
    return "  n/a " if value is None else f"{100 * value:5.1f} %"


def _minutes(ns: int) -> str:
    return f"{ns / NS_PER_S / 60:8.1f}"


def _fmt_ns(ns: int, tz: dt.tzinfo) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _units(unit: str, n: float) -> str:
    return unit if unit in ("t", "mixed") or n == 1 else unit + "s"


def render_text(
    result: OeeResult, parts: list[OeeResult], tz: dt.tzinfo, reason_names: dict[int, str]
) -> str:
    """The plant-engineer view of a result (and its per-shift or per-day parts)."""
    r = result
    undefined = r.why_undefined()
    out = [
        f"OEE {r.scope or '(asset)'}  {_fmt_ns(r.window_start_ns, tz)} .. "
        f"{_fmt_ns(r.window_end_ns, tz)} ({tz})",
        "",
        f"  availability {_pct(r.availability)}   run {_minutes(r.apt_ns).strip()} min of "
        f"planned busy {_minutes(r.pbt_ns).strip()} min",
        f"  performance  {_pct(r.performance)}   ideal {r.ideal_produced_s / 60:.1f} min for "
        f"{r.produced:g} {_units(r.unit, r.produced)}",
        f"  quality      {_pct(r.quality)}   {r.good:g} good, {r.rejected:g} rejected"
        + (
            f" ({r.produced_graded:g} of {r.produced:g} graded)"
            if r.produced_graded < r.produced
            else ""
        ),
        f"  OEE          {_pct(r.oee)}",
        f"  TEEP         {_pct(r.teep)}   utilisation {_pct(r.utilisation).strip()}",
    ]
    for name, why in undefined.items():
        if name in ("availability", "performance", "quality", "oee", "teep"):
            out.append(f"  ({name} undefined: {why})")
    out += ["", "  time elements, ISO 22400-2 (minutes)"]
    for label, ns in (
        ("POT  planned operation", r.pot_ns), ("PDOT planned down", r.pdot_ns),
        ("PBT  planned busy", r.pbt_ns), ("APT  production", r.apt_ns),
        ("     of which minor stops", r.microstop_ns), ("ASUT setup", r.asut_ns),
        ("ADOT down (idle/starved/blocked)", r.adot_ns), ("ADET delay (breakdown)", r.adet_ns),
        ("     no data", r.no_data_ns),
    ):  # fmt: skip
        out.append(f"    {label:<34}{_minutes(ns)}")
    out.append(f"    stops: {r.stop_count}, minor stops: {r.microstop_count}")
    out += ["", "  six big losses (minutes)"]
    for name, seconds in r.six_big_losses().items():
        shown = "     n/a" if seconds is None else f"{seconds / 60:8.1f}"
        out.append(f"    {name.removesuffix('_s').replace('_', ' '):<34}{shown}")
    if r.downtime_by_reason:
        out += ["", "  downtime by reason (minutes)"]
        for code, ns in r.downtime_by_reason[:10]:
            out.append(f"    {reason_names.get(code, str(code)):<34}{_minutes(ns)}")
    if r.outside_planned_count:
        out.append(f"\n  {r.outside_planned_count:g} made outside planned busy time (not counted)")
    for note in r.notes:
        out.append(f"  note: {note}")
    if parts:
        out += ["", f"  {'period':<18}{'avail':>8}{'perf':>8}{'qual':>8}{'OEE':>8}{'made':>9}"]
        for p in parts:
            out.append(
                f"  {p.period:<18}{_pct(p.availability):>8}{_pct(p.performance):>8}"
                f"{_pct(p.quality):>8}{_pct(p.oee):>8}{p.produced:>9g}"
            )
    return "\n".join(out)


def _window(args: argparse.Namespace, tz: dt.tzinfo, first: int, last: int) -> tuple[int, int]:
    try:
        start = _parse_time(args.start, tz) if args.start else first
        end = _parse_time(args.end, tz) if args.end else last
    except ValueError as exc:
        raise InputError(f"--from/--to: {exc}") from None
    return start, end


def _press(
    args: argparse.Namespace, tz: dt.tzinfo, calendar: ShiftCalendar | None, problems: _Problems
) -> tuple[OeeResult, list[OeeResult], dict[int, str]]:
    if args.states is None or args.counts is None:
        raise InputError("--states and --counts are required (or --pushes for a tunnel kiln)")
    timeline, reason_names = read_states(args.states, tz, problems)
    counts = read_counts(args.counts, tz, problems)
    last = [int(timeline.start_ns[-1])]
    if counts.time_ns.size:
        last.append(int(counts.time_ns[-1]) + 1)  # include the last count
    window = _window(args, tz, int(timeline.start_ns[0]), max(last))
    if args.by and calendar is None:
        raise InputError("--by needs --shifts (a calendar defines shifts and days)")
    common = dict(ideal_cycle_time_s=args.ideal_cycle_s, microstop_s=args.microstop_s,
                  startup_s=args.startup_s, scope=args.asset)  # fmt: skip
    result = compute_oee(timeline, counts, window=window, shifts=calendar, **common)
    parts: list[OeeResult] = []
    if args.by == "shift":
        parts = by_shift(timeline, counts, window=window, shifts=calendar, **common)
    elif args.by == "day":
        parts = by_day(timeline, counts, window=window, shifts=calendar, **common)
    return result, parts, reason_names


def _kiln(
    args: argparse.Namespace, tz: dt.tzinfo, calendar: ShiftCalendar | None, problems: _Problems
) -> tuple[OeeResult, list[OeeResult], dict[int, str]]:
    if args.nameplate_per_h is None:
        raise InputError("--pushes needs --nameplate-per-h (cars or tonnes per hour)")
    if args.counts or args.by:
        raise InputError("--counts and --by are for presses, not with --pushes")
    pushes = read_pushes(args.pushes, tz, problems)
    gradings = read_gradings(args.gradings, tz, problems) if args.gradings else Gradings.empty()
    timeline, reason_names = (None, {})
    if args.states:
        timeline, reason_names = read_states(args.states, tz, problems)
    firsts = [int(pushes.time_ns[0])] if pushes.time_ns.size else []
    lasts = [int(pushes.time_ns[-1]) + 1] if pushes.time_ns.size else []
    if timeline is not None:
        firsts.append(int(timeline.start_ns[0]))
        lasts.append(int(timeline.start_ns[-1]))
    if not firsts and not (args.start and args.end):
        raise InputError(f"{args.pushes}: no valid push rows (give --from and --to)")
    window = _window(args, tz, min(firsts or [0]), max(lasts or [0]))
    try:
        as_of = _parse_time(args.as_of, tz) if args.as_of else None
    except ValueError as exc:
        raise InputError(f"--as-of: {exc}") from None
    result = compute_kiln_oee(
        timeline, pushes, gradings, window=window, nameplate_per_hour=args.nameplate_per_h,
        shifts=calendar, microstop_s=0.0, as_of_ns=as_of, unit=args.unit, scope=args.asset,
    )  # fmt: skip
    return result, [], reason_names


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Run ``report oee``; see the module docstring for exit statuses."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["oee"]:
        args_in = args_in[1:]
    out = stdout or sys.stdout
    args = _parser().parse_args(args_in)
    problems = _Problems()
    try:
        calendar = ShiftCalendar.load(args.shifts) if args.shifts else None
        tz_name = args.timezone
        try:
            tz: dt.tzinfo = ZoneInfo(tz_name) if tz_name else (calendar.tz if calendar else dt.UTC)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"--timezone: unknown timezone {tz_name!r}") from None
        if args.pushes:
            result, parts, reason_names = _kiln(args, tz, calendar, problems)
        else:
            result, parts, reason_names = _press(args, tz, calendar, problems)
    except (InputError, ConfigError, ValueError) as exc:
        print(f"kilnworks report oee: {exc}", file=sys.stderr)
        return 2
    if problems.rows:
        print(f"kilnworks report oee: skipped {len(problems.rows)} bad row(s):", file=sys.stderr)
        for row in problems.rows[:MAX_LISTED_ERRORS]:
            print(f"  {row}", file=sys.stderr)
    if args.json:
        doc = result.to_dict()
        doc["reason_names"] = {str(k): v for k, v in reason_names.items()}
        doc["skipped_rows"] = problems.rows
        doc["parts"] = [p.to_dict() for p in parts]
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        out.write(render_text(result, parts, tz, reason_names) + "\n")
    return 0


__all__ = [
    "FORMATS", "RATIOS", "main", "read_counts", "read_gradings", "read_pushes", "read_states",
    "render_text",
]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
