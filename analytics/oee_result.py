"""The OEE result: raw ISO 22400-2 elements and counts, with every ratio derived from them.

A result stores only *additive* quantities (times in integer ns, quantities, ideal times in
seconds). Every ratio (availability, performance, quality, OEE, TEEP...) is a property computed
from them, so a roll-up is a plain sum of fields (``analytics/rollup.py``) and can never turn into
an average of ratios. A ratio whose denominator is zero is ``None``; :meth:`OeeResult.why_undefined`
says why, and ``to_dict`` carries both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

NS_PER_S = 1_000_000_000

# Fields that add up in a roll-up (everything except labels and the window).
ADDITIVE = (
    "calendar_ns", "pot_ns", "pdot_ns", "pbt_ns", "apt_ns", "asut_ns", "adot_ns", "adet_ns",
    "no_data_ns", "microstop_ns", "microstop_count", "stop_count", "produced", "good",
    "rejected", "startup_rejected", "ideal_produced_s", "ideal_graded_s", "ideal_good_s",
    "ideal_startup_rejected_s", "outside_planned_count", "produced_graded", "parts",
    "reasoned_down_ns",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OeeResult:
    """OEE of one scope (an asset, or a roll-up) over one period.

    Time elements (ISO 22400-2, integer ns, all inside the window):

    * ``calendar_ns`` all time (window length; the TEEP denominator);
    * ``pot_ns`` planned operation time (shifts), ``pdot_ns`` planned down time inside it
      (breaks, planned stops), ``pbt_ns = pot_ns - pdot_ns`` planned busy time;
    * inside PBT: ``apt_ns`` actual production time (running, *including* microstops, which
      are a performance loss), ``asut_ns`` setup, ``adot_ns`` down while available (idle,
      starved, blocked), ``adet_ns`` malfunction delays (breakdown), ``no_data_ns`` unknown;
      these five add up to ``pbt_ns``;
    * ``microstop_ns`` / ``microstop_count``: stops shorter than the threshold (inside APT);
      ``stop_count``: longer stops (availability losses) starting in PBT.

    Quantities counted inside PBT: ``produced`` (PQ), ``good`` (GQ), ``rejected`` (SQ), of which
    ``startup_rejected`` within the start-up window after a setup or breakdown; the ideal time
    for them (``ideal_*_s`` = planned run time per item x quantity) so that assets with
    different cycle times roll up correctly. ``outside_planned_count``: quantity made outside
    PBT (reported, not counted). ``produced_graded`` / ``ideal_graded_s``: the part of the
    production whose quality is known (presses: all of it; kilns: the graded cars), ``good``
    and ``ideal_good_s`` are counted over that part, so quality stays a pure function of what
    has been graded and is *provisional* while ``produced_graded < produced``.
    ``downtime_by_reason``: ((reason code, ns), ...) of unplanned downtime (setup, down,
    delay) with a reason; ``reasoned_down_ns`` their total.
    """

    scope: str
    period: str
    window_start_ns: int
    window_end_ns: int
    calendar_ns: int = 0
    pot_ns: int = 0
    pdot_ns: int = 0
    pbt_ns: int = 0
    apt_ns: int = 0
    asut_ns: int = 0
    adot_ns: int = 0
    adet_ns: int = 0
    no_data_ns: int = 0
    microstop_ns: int = 0
    microstop_count: int = 0
    stop_count: int = 0
    produced: float = 0.0
    good: float = 0.0
    rejected: float = 0.0
    startup_rejected: float = 0.0
    ideal_produced_s: float = 0.0
    ideal_graded_s: float = 0.0
    ideal_good_s: float = 0.0
    ideal_startup_rejected_s: float = 0.0
    outside_planned_count: float = 0.0
    produced_graded: float = 0.0
    reasoned_down_ns: int = 0
    downtime_by_reason: tuple[tuple[int, int], ...] = ()
    unit: str = "piece"
    parts: int = 1  # how many asset-periods this result sums
    ideal_known: bool = True  # False when no ideal cycle time was given
    notes: tuple[str, ...] = field(default=())

    # --- ISO 22400-2 derived times -------------------------------------------------------
    @property
    def aupt_ns(self) -> int:
        """Actual unit processing time = APT + ASUT."""
        return self.apt_ns + self.asut_ns

    @property
    def aubt_ns(self) -> int:
        """Actual unit busy time = AUPT + ADET."""
        return self.aupt_ns + self.adet_ns

    @property
    def unplanned_down_ns(self) -> int:
        """Availability losses: setup, down, delay and unknown time inside PBT."""
        return self.asut_ns + self.adot_ns + self.adet_ns + self.no_data_ns

    # --- ratios --------------------------------------------------------------------------
    def _ratio(self, num: float, den: float) -> float | None:
        return None if den <= 0 else num / den

    @property
    def availability(self) -> float | None:
        """APT / PBT."""
        return self._ratio(self.apt_ns, self.pbt_ns)

    @property
    def performance(self) -> float | None:
        """Effectiveness: PRI x PQ / APT (the ideal time for what was made over run time)."""
        if not self.ideal_known:
            return None
        return self._ratio(self.ideal_produced_s * NS_PER_S, self.apt_ns)

    @property
    def quality(self) -> float | None:
        """Quality ratio GQ / PQ over the graded production (ideal-time weighted, so assets
        with different cycle times roll up correctly)."""
        if self.ideal_known and self.ideal_graded_s > 0:
            return self.ideal_good_s / self.ideal_graded_s
        return self._ratio(self.good, self.produced_graded)

    def _fully_productive_s(self) -> float | None:
        # Ideal time of what was made x quality; quality of ungraded ware is assumed to be
        # that of the graded ware (provisional until the grading arrives).
        if not self.ideal_known:
            return None
        if self.ideal_produced_s <= 0:
            return 0.0
        q = self.quality
        return None if q is None else self.ideal_produced_s * q

    @property
    def oee(self) -> float | None:
        """A x P x Q = fully productive time / PBT."""
        fpt = self._fully_productive_s()
        return None if fpt is None else self._ratio(fpt * NS_PER_S, self.pbt_ns)

    @property
    def utilisation(self) -> float | None:
        """Planned busy time over all time (the loading factor of TEEP)."""
        return self._ratio(self.pbt_ns, self.calendar_ns)

    @property
    def teep(self) -> float | None:
        """OEE x PBT / all time = fully productive time / all time."""
        fpt = self._fully_productive_s()
        return None if fpt is None else self._ratio(fpt * NS_PER_S, self.calendar_ns)

    @property
    def scrap_ratio(self) -> float | None:
        """SQ / PQ."""
        return self._ratio(self.rejected, self.produced)

    @property
    def throughput_per_h(self) -> float | None:
        """PQ per hour of actual unit busy time (ISO 22400-2 throughput rate, PQ / AUBT)."""
        return self._ratio(self.produced * 3600 * NS_PER_S, self.aubt_ns)

    @property
    def graded_share(self) -> float | None:
        """Share of the produced quantity whose quality is known (kilns: graded cars)."""
        return self._ratio(self.produced_graded, self.produced)

    @property
    def reason_coverage(self) -> float | None:
        """Share of unplanned downtime that has a reason code."""
        return self._ratio(self.reasoned_down_ns, self.unplanned_down_ns)

    def why_undefined(self) -> dict[str, str]:
        """For each ratio that is None, the reason in words a plant engineer can act on."""
        out: dict[str, str] = {}
        no_pbt = (
            "no planned busy time in the window (no shift, or all planned downtime)"
            if self.calendar_ns > 0
            else "empty window"
        )
        if self.pbt_ns <= 0:
            out["availability"] = no_pbt
        if not self.ideal_known:
            why = "no ideal cycle time (or nameplate rate) given"
            out["performance"] = out["oee"] = out["teep"] = why
        else:
            if self.apt_ns <= 0:
                out["performance"] = "no run time in planned busy time"
            if self.pbt_ns <= 0:
                out["oee"] = no_pbt
            if self.calendar_ns <= 0:
                out["teep"] = "empty window"
        if self.produced <= 0:
            out["quality"] = out["scrap_ratio"] = "nothing produced"
        elif self.produced_graded <= 0:
            out["quality"] = "no grading received yet"
            if self.ideal_known:
                out["oee"] = out["teep"] = "quality not known until the grading arrives"
        if self.calendar_ns <= 0:
            out["utilisation"] = "empty window"
        if self.aubt_ns <= 0:
            out["throughput_per_h"] = "no busy time"
        if self.produced <= 0:
            out["graded_share"] = "nothing produced"
        if self.unplanned_down_ns <= 0:
            out["reason_coverage"] = "no unplanned downtime"
        return out

    # --- losses --------------------------------------------------------------------------
    def six_big_losses(self) -> dict[str, float | None]:
        """The six big losses in seconds of planned busy time (oee.com's taxonomy).

        Availability: ``equipment_failure`` (breakdown, idle/starved/blocked longer than the
        microstop threshold, no data) and ``setup_adjustments``. Performance: ``minor_stops``
        (stops under the threshold) and ``reduced_speed`` (run time not explained by the ideal
        time or minor stops; negative when the ideal cycle time is set too slow).
        Quality: ``process_defects`` and ``startup_rejects`` as ideal time lost to rejects.
        Performance and quality losses are None when no ideal cycle time is known; quality
        losses of ungraded ware are estimated at the graded ware's quality.
        """
        s = 1 / NS_PER_S
        fpt = self._fully_productive_s()
        ideal = fpt is not None
        reject_s = self.ideal_produced_s - fpt if ideal else 0.0
        return {
            "equipment_failure_s": (self.adot_ns + self.adet_ns + self.no_data_ns) * s,
            "setup_adjustments_s": self.asut_ns * s,
            "minor_stops_s": self.microstop_ns * s,
            "reduced_speed_s": (
                (self.apt_ns - self.microstop_ns) * s - self.ideal_produced_s if ideal else None
            ),
            "process_defects_s": reject_s - self.ideal_startup_rejected_s if ideal else None,
            "startup_rejects_s": self.ideal_startup_rejected_s if ideal else None,
            "fully_productive_s": fpt,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: labels, elements (ns and s), counts, ratios, losses, undefined reasons."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "downtime_by_reason":
                value = [{"reason": r, "seconds": ns / NS_PER_S} for r, ns in value]
            elif f.name == "notes":
                value = list(value)
            out[f.name] = value
        for name in ("aupt_ns", "aubt_ns", "unplanned_down_ns"):
            out[name] = getattr(self, name)
        out["elements_s"] = {
            k.removesuffix("_ns"): out[k] / NS_PER_S
            for k in (
                "calendar_ns", "pot_ns", "pdot_ns", "pbt_ns", "apt_ns", "asut_ns", "adot_ns",
                "adet_ns", "no_data_ns", "microstop_ns", "aupt_ns", "aubt_ns",
            )
        }  # fmt: skip
        out["ratios"] = {name: getattr(self, name) for name in RATIOS}
        out["losses"] = self.six_big_losses()
        out["undefined"] = self.why_undefined()
        return out


RATIOS = (
    "availability", "performance", "quality", "oee", "teep", "utilisation", "scrap_ratio",
    "throughput_per_h", "graded_share", "reason_coverage",
)  # fmt: skip


def merge_reasons(
    parts: list[tuple[tuple[int, int], ...]] | list[Mapping[int, int]],
) -> tuple[tuple[int, int], ...]:
    """Sum per-reason downtime of several results; sorted by time lost, largest first."""
    total: dict[int, int] = {}
    for p in parts:
        for r, ns in p.items() if isinstance(p, Mapping) else p:
            total[r] = total.get(r, 0) + ns
    return tuple(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))
