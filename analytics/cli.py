"""``kilnworks report``: judge a firing against its programme (``firing``) or compute OEE (``oee``).

``kilnworks report firing --programme programme.toml --data firing.csv [--json] [--plot out.png]
[--band 10] [--start TIME | --auto-start] [--pause START/END ...]``

Exit codes: 0 judged (whatever the verdict), 1 the verdict is ``nonconforming`` and
``--fail-on-nonconforming`` was given, 2 unusable input (the message says which file and why).
``report oee`` belongs to :mod:`analytics.oee_cli` (imported only when used).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from core.config import ConfigError

USAGE = "usage: kilnworks report {firing,oee} [options]   (report firing --help)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("  firing  judge a firing CSV against its programme")
        print("  oee     OEE from a state timeline and counts")
        return 0 if args else 2
    what, rest = args[0], args[1:]
    if what == "firing":
        return firing_main(rest)
    if what == "oee":
        from analytics import oee_cli  # lazily: the OEE half is another module's job

        return int(oee_cli.main(rest) or 0)
    print(f"kilnworks report: unknown report {what!r}\n{USAGE}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kilnworks report firing",
        description="Judge a firing (CSV export of a kiln controller) against its programme.",
    )
    p.add_argument("--programme", required=True, help="programme TOML file")
    p.add_argument("--data", required=True, help="CSV: time,<thermocouple>,... (°C)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plot", metavar="PNG", help="draw actual vs setpoint (needs matplotlib)")
    p.add_argument("--band", type=float, default=10.0, help="± band in °C (default 10)")
    p.add_argument("--min-excursion-s", type=float, default=120.0)
    p.add_argument("--max-gap-s", type=float, default=300.0)
    start = p.add_mutually_exclusive_group()
    start.add_argument("--start", help="programme start (RFC 3339 or epoch ns; default: first row)")
    start.add_argument(
        "--auto-start", action="store_true", help="find the start that fits the programme best"
    )
    p.add_argument(
        "--pause", action="append", default=[], metavar="START/END", help="a paused interval"
    )
    p.add_argument("--fail-on-nonconforming", action="store_true")
    return p


def firing_main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run ``report firing``; prints to ``out`` (stdout), problems to stderr."""
    from analytics.conformance import ConformanceSettings, judge_firing
    from analytics.firing_clock import estimate_start_ns
    from analytics.firing_csv import CsvError, parse_time_ns, read_firing_csv
    from analytics.programme import load_programme

    out = out or sys.stdout
    try:
        ns = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on bad options
        return int(exc.code or 0)
    try:
        programme = load_programme(ns.programme)
        data = read_firing_csv(ns.data)
        settings = ConformanceSettings(
            band_c=ns.band, min_excursion_s=ns.min_excursion_s, max_gap_s=ns.max_gap_s
        )
        pauses = []
        for text in ns.pause:
            a, sep, b = text.partition("/")
            if not sep:
                raise ValueError(f"--pause {text!r}: expected START/END")
            pauses.append((parse_time_ns(a), parse_time_ns(b)))
        if ns.start:
            start_ns = parse_time_ns(ns.start)
        elif ns.auto_start:
            start_ns = estimate_start_ns(data.time_ns, data.temps_c, programme)
        else:
            start_ns = int(data.time_ns[0])
        report = judge_firing(
            programme,
            data.time_ns,
            data.temps_c,
            start_ns=start_ns,
            pauses=pauses,
            thermocouples=data.names,
            settings=settings,
        )
    except (ConfigError, CsvError, ValueError) as exc:
        print(f"kilnworks report firing: {exc}", file=sys.stderr)
        return 2
    if data.bad_rows or data.bad_cells:
        print(
            f"kilnworks report firing: {ns.data}: ignored {data.bad_rows} row(s) and "
            f"{data.bad_cells} cell(s):",
            file=sys.stderr,
        )
        for problem in data.problems:
            print(f"  {problem}", file=sys.stderr)
    if ns.json:
        doc = report.to_dict()
        doc["input"] = {"bad_rows": data.bad_rows, "bad_cells": data.bad_cells}
        json.dump(doc, out, indent=2, allow_nan=False)
        out.write("\n")
    else:
        out.write(format_report(report))
    if ns.plot:
        # Only the import is guarded for ImportError: one raised while drawing would be a bug
        # in an installed matplotlib, not a missing one.
        try:
            from analytics.firing_plot import plot_firing
        except ImportError:
            print(
                "kilnworks report firing: --plot needs matplotlib "
                "(pip install 'kilnworks[plot]'); the report above is complete without it",
                file=sys.stderr,
            )
            return 2
        try:
            plot_firing(
                ns.plot, programme, data.time_ns, data.temps_c, report, data.names, pauses=pauses
            )
        except (OSError, ValueError) as exc:  # no such directory, read-only, unknown suffix
            print(
                f"kilnworks report firing: --plot {ns.plot}: cannot write the plot ({exc}); "
                "the report above is complete without it",
                file=sys.stderr,
            )
            return 2
    if ns.fail_on_nonconforming and report.verdict == "nonconforming":
        return 1
    return 0


def _fmt(x: float | None, spec: str = ".1f") -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return format(x, spec)


def _when(ns: int | None, start_ns: int) -> str:
    return "-" if ns is None else f"{(ns - start_ns) / 3.6e12:.2f} h"


def format_report(r) -> str:
    """The human summary a kiln engineer reads (times are hours from the programme start)."""
    lines = [
        f"firing vs programme {r.programme!r}: {r.verdict.upper()}",
        f"  score (time inside ±{r.band_c:g} °C): {_fmt(r.score * 100)} %   "
        f"coverage: {_fmt(r.coverage * 100)} %",
        f"  deviation  max {_fmt(r.max_abs_deviation_c)} °C   mean {_fmt(r.mean_abs_deviation_c)}"
        f" °C   RMS {_fmt(r.rms_deviation_c)} °C",
        f"  spread across thermocouples  max {_fmt(r.spread_max_c)} °C "
        f"(at {_when(r.spread_max_ns, r.start_ns)})   mean {_fmt(r.spread_mean_c)} °C",
        f"  uniformity in holds ±{_fmt(r.uniformity_c)} °C  AMS2750 class "
        + {-1: "undefined (no hold)", 0: "none (worse than ±28 °C)"}.get(
            r.uniformity_class, str(r.uniformity_class)
        ),
        f"  cone equivalent {_fmt(r.cone_min)} .. {_fmt(r.cone_max)}",
        "",
        "  segment            programmed     achieved (mean of TCs)   soak in band   peak",
    ]
    for s in r.segments:
        rates = np.asarray(s.achieved_rate_c_h, dtype=float)
        achieved = np.nanmean(rates) if np.isfinite(rates).any() else np.nan
        prog = (
            f"{s.programmed_rate_c_h:+.0f} °C/h"
            if s.programmed_rate_c_h
            else (f"{s.programmed_hold_s / 3600:g} h" if s.programmed_hold_s else "-")
        )
        soak = "-"
        if s.soak_in_band_s is not None:
            soaks = np.asarray(s.soak_in_band_s, dtype=float)
            if np.isfinite(soaks).any():
                soak = f"{np.nanmin(soaks) / 3600:.2f} h (min)"
        peaks = np.asarray(s.peak_c, dtype=float)
        peak = np.nanmax(peaks) if np.isfinite(peaks).any() else np.nan
        lines.append(
            f"  {s.index:>2} {s.kind:<14} {prog:>12}   {_fmt(achieved, '+.1f'):>8} °C/h"
            f"              {soak:>14}  {_fmt(peak)} °C"
        )
    lines.append("")
    lines.append(
        f"  excursions (> {r.settings.min_excursion_s:g} s outside band): {len(r.excursions)}"
    )
    for e in r.excursions[:20]:
        lines.append(
            f"    {e.thermocouple}: {_when(e.start_ns, r.start_ns)} .. "
            f"{_when(e.end_ns, r.start_ns)}"
            f"  worst {e.worst_deviation_c:+.1f} °C at {_when(e.worst_ns, r.start_ns)}"
            f"  (segment {e.segment}, {e.alarm.replace('_', ' ')})"
        )
    if len(r.excursions) > 20:
        lines.append(f"    ... {len(r.excursions) - 20} more (--json lists all)")
    lines.append(f"  stalls: {len(r.stalls)}")
    for st in r.stalls[:20]:
        lines.append(
            f"    {st.thermocouple}: {_when(st.start_ns, r.start_ns)} .. "
            f"{_when(st.end_ns, r.start_ns)}  min {st.min_rate_c_h:+.1f} °C/h "
            f"(segment {st.segment})"
        )
    lines.append("")
    lines.append(
        "  thermocouple              max|dev|  mean|dev|  in band  coverage   peak    cone"
    )
    for t in r.thermocouples:
        lines.append(
            f"  {t.name:<24} {_fmt(t.max_abs_deviation_c):>8} {_fmt(t.mean_abs_deviation_c):>10}"
            f" {_fmt(t.share_in_band * 100):>7} % {_fmt(t.coverage * 100):>7} %"
            f" {_fmt(t.peak_c):>7} {_fmt(t.cone, '.2f'):>7}"
        )
    return "\n".join(lines) + "\n"
