"""``--plot``: actual vs setpoint with the ±band and the excursions marked (matplotlib, optional).

Importing this module raises ImportError when matplotlib is not installed; the CLI turns that
into a clear message. Uses the Agg backend: no display needed on a plant server.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analytics.conformance import FiringReport, deviation_series
from analytics.programme import Programme


def plot_firing(
    path: str | Path,
    programme: Programme,
    time_ns: np.ndarray,
    temps_c: np.ndarray,
    report: FiringReport,
    names: Sequence[str],
    *,
    pauses: Sequence[tuple[int, int]] = (),
) -> None:
    """Write a PNG of every thermocouple, the setpoint, its band and the excursions."""
    sp, _ = deviation_series(programme, time_ns, temps_c, start_ns=report.start_ns, pauses=pauses)
    hours = (np.asarray(time_ns) - report.start_ns) / 3.6e12
    fig, ax = plt.subplots(figsize=(12, 6))
    for i, name in enumerate(names):
        ax.plot(hours, temps_c[i], lw=0.7, label=name if len(names) <= 12 else None)
    ax.plot(hours, sp, color="black", lw=1.5, label="setpoint")
    ax.fill_between(
        hours,
        sp - report.band_c,
        sp + report.band_c,
        color="grey",
        alpha=0.25,
        label=f"±{report.band_c:g} °C",
    )
    for e in report.excursions:
        ax.axvspan(
            (e.start_ns - report.start_ns) / 3.6e12,
            (e.end_ns - report.start_ns) / 3.6e12,
            color="red",
            alpha=0.2,
        )
    ax.set_xlabel("hours from programme start")
    ax.set_ylabel("temperature (°C)")
    ax.set_title(f"{report.programme}: {report.verdict}, score {report.score:.1%}")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
