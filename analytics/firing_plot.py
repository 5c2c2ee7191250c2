"""``--plot``: actual vs setpoint with the ±band and the excursions marked (matplotlib, optional).

Importing this module raises ImportError when matplotlib is not installed; the CLI turns that
into a clear message. It draws on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas
and never touches pyplot: pyplot keeps every figure in a process-wide registry (not
thread-safe, and leaked when ``savefig`` raises), and switching its backend with
``matplotlib.use`` closes the figures of whoever imported us (a notebook, the API process).
No display is needed on a plant server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analytics.conformance import FiringReport, deviation_series
from analytics.programme import Programme

NS_PER_H = 3.6e12
FIGSIZE_IN = (12.0, 6.0)
DPI = 120  # 12 x 6 in at 120 dpi: a 1440 x 720 PNG
MAX_LEGEND_THERMOCOUPLES = 12  # beyond this the legend would hide the curves


def _text(s: str) -> str:
    """``s`` shown literally: matplotlib reads text between two ``$`` as mathtext, which
    garbles a name like "$1 budget, $2 glaze" and fails the whole save when it is not valid
    TeX ("cone 10 $^$ fast")."""
    return s.replace("$", r"\$")


def plot_firing(
    path: str | Path,
    programme: Programme,
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    report: FiringReport,
    names: Sequence[str],
    *,
    pauses: Sequence[tuple[int, int]] = (),
) -> Figure:
    """Write an image (format from the suffix of ``path``) of every thermocouple, the setpoint,
    its ±band and the excursions; return the figure.

    x is wall-clock hours from ``report.start_ns`` (pauses included, so the time axis matches
    the CSV); the setpoint stands still during ``pauses`` exactly as the judge saw it. Artists
    carry gids so callers (and SVG output) can find them: ``tc:<name>`` per thermocouple,
    ``setpoint``, ``band``, ``excursion`` (a span over the excursion's first..last sample) and
    ``worst:<name>`` (a marker at its worst deviation). Raises OSError / ValueError when the
    file cannot be written or the format is unknown.
    """
    time_ns = np.asarray(time_ns, dtype=np.int64)
    temps = np.asarray(temps_c, dtype=np.float64)
    if temps.ndim == 1:
        temps = temps[None, :]
    sp, _ = deviation_series(programme, time_ns, temps, start_ns=report.start_ns, pauses=pauses)
    # int64 subtraction first: epoch ns as float64 would lose the sub-second part.
    hours = (time_ns - np.int64(report.start_ns)) / NS_PER_H

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Band below, actual curves above it, setpoint dashed on top: a thermocouple that tracks the
    # setpoint stays visible instead of disappearing under a solid setpoint line.
    ax.fill_between(
        hours,
        sp - report.band_c,
        sp + report.band_c,
        color="grey",
        alpha=0.25,
        lw=0,
        label=f"±{report.band_c:g} °C",
        gid="band",
        zorder=1,
    )
    colours = {}
    show_names = len(names) <= MAX_LEGEND_THERMOCOUPLES
    for i, name in enumerate(names):
        (line,) = ax.plot(
            hours,
            temps[i],
            lw=0.8,
            label=_text(name) if show_names else "_nolegend_",
            gid=f"tc:{name}",
            zorder=2,
        )
        colours[name] = line.get_color()
    ax.plot(hours, sp, color="black", lw=1.2, ls="--", label="setpoint", gid="setpoint", zorder=3)

    # A red span alone does not say which thermocouple left the band when there are 24 of them;
    # the marker in that thermocouple's colour does.
    row = {name: i for i, name in enumerate(names)}
    for n, e in enumerate(report.excursions):
        ax.axvspan(
            (e.start_ns - report.start_ns) / NS_PER_H,
            (e.end_ns - report.start_ns) / NS_PER_H,
            color="red",
            alpha=0.15,
            lw=0,
            label="excursion" if n == 0 else "_nolegend_",
            gid="excursion",
            zorder=0,
        )
        if e.thermocouple in row:
            k = int(np.searchsorted(time_ns, e.worst_ns))
            if k < time_ns.size and time_ns[k] == e.worst_ns:
                ax.plot(
                    [(e.worst_ns - report.start_ns) / NS_PER_H],
                    [temps[row[e.thermocouple], k]],
                    marker="x",
                    ms=8,
                    mew=2,
                    color=colours[e.thermocouple],
                    label="_nolegend_",
                    gid=f"worst:{e.thermocouple}",
                    zorder=4,
                )

    ax.set_xlabel("hours from programme start")
    ax.set_ylabel("temperature (°C)")
    score = f"score {report.score:.1%}" if math.isfinite(report.score) else "no score"
    ax.set_title(_text(f"{report.programme}: {report.verdict}, {score}"))
    # A firing curve rises to the peak mid-firing and falls again, so the bottom centre is the
    # one corner it rarely crosses ("best" would search thousands of points on every save).
    ax.legend(loc="lower center", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    return fig
