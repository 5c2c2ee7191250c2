"""Digitalisation progress per enterprise: what the platform sees, next to what the firm says.

GB/T 39116-2020 (intelligent manufacturing capability maturity) is a questionnaire: an enterprise
rates itself from level 1 (planning) to 5 (leading) on four elements (personnel, technology,
resources, manufacturing). The platform can check part of that claim from its own data. This
module computes five *measured indicators*, each a share in [0, 1]:

==================  =========================================================================
``connected``       registered assets that sent data in the period / registered assets
``completeness``    samples received / samples expected (capped at 1; raw value kept)
``timeliness``      samples that arrived within ``latency_target_s`` of their source time
``conformance``     firings with a programme *and* a conformance score / firings
``reason_coded``    unplanned downtime with a reason code / unplanned downtime
==================  =========================================================================

and combines them with the self-assessment into one documented, deliberately simple index:

* ``measured_index`` D = mean of the indicators that are defined (an indicator whose
  denominator is zero, say no downtime at all, is left out rather than scored 0 or 1);
* ``assessed_level`` L = mean of the four GB/T 39116 element levels; normalised
  A = (L - 1) / 4 so level 1 is 0 and level 5 is 1;
* ``progress_index`` = 100 x (A + D) / 2 (only one of them known: 100 x that one);
* ``gap`` = A - D: positive when the self-assessment runs ahead of what the data shows
  (a note flags a gap above 0.25, worth a visit by the town's digitalisation office);
* ``evidence_level`` = 1 + 4 D, the GB/T-style level the platform's data alone supports.

Equal weights are a choice, not a finding: they keep the index explainable to an enterprise
manager in one sentence; change them only with the town office, and record why.
Who calls this: the API's digitalisation service, once per enterprise per period.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ConfigError, Table, load_toml, parse_toml

NS_PER_S = 1_000_000_000
ELEMENTS = ("personnel", "technology", "resources", "manufacturing")
LEVEL_NAMES = {1: "planning", 2: "standardised", 3: "integrated", 4: "optimised", 5: "leading"}
GAP_NOTE_THRESHOLD = 0.25


def _share(num: float, den: float) -> float | None:
    return None if den <= 0 else num / den


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{what}: expected a count >= 0, got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class PlatformObservations:
    """What the platform saw of one enterprise over one period (see :func:`observe`)."""

    registered_assets: int
    connected_assets: int
    expected_samples: int
    received_samples: int
    latency_samples: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_within_target: int
    latency_target_s: float
    skewed_samples: int  # arrival before source time: the source clock runs ahead
    firings: int
    firings_with_programme: int
    firings_scored: int
    unplanned_downtime_ns: int
    downtime_with_reason_ns: int

    def indicators(self) -> dict[str, float | None]:
        """The five shares (None where the denominator is zero), plus raw completeness."""
        raw = _share(self.received_samples, self.expected_samples)
        return {
            "connected": _share(self.connected_assets, self.registered_assets),
            "completeness": None if raw is None else min(raw, 1.0),
            "timeliness": _share(self.latency_within_target, self.latency_samples),
            "conformance": _share(self.firings_scored, self.firings),
            "reason_coded": _share(self.downtime_with_reason_ns, self.unplanned_downtime_ns),
        }

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["programme_share"] = _share(self.firings_with_programme, self.firings)
        out["completeness_raw"] = _share(self.received_samples, self.expected_samples)
        out["indicators"] = self.indicators()
        return out


def observe(
    *,
    registered_assets: int,
    connected_assets: int,
    expected_samples: int,
    received_samples: int,
    source_ns: np.ndarray | None = None,
    received_ns: np.ndarray | None = None,
    firings: int = 0,
    firings_with_programme: int = 0,
    firings_scored: int = 0,
    unplanned_downtime_ns: int = 0,
    downtime_with_reason_ns: int = 0,
    latency_target_s: float = 10.0,
) -> PlatformObservations:
    """Build observations; ingest latency comes from paired ``source_ns``/``received_ns`` arrays
    (the reading's source time and the edge's receive time, integer ns). A latency sample is a
    reading, so pass a sample of readings rather than all of them if the period is long.

    ValueError for negative counts, a part larger than its whole (``connected_assets`` >
    ``registered_assets``, scored firings > firings...) or arrays of different lengths.
    """
    counts = {
        "registered_assets": _count(registered_assets, "registered_assets"),
        "connected_assets": _count(connected_assets, "connected_assets"),
        "expected_samples": _count(expected_samples, "expected_samples"),
        "received_samples": _count(received_samples, "received_samples"),
        "firings": _count(firings, "firings"),
        "firings_with_programme": _count(firings_with_programme, "firings_with_programme"),
        "firings_scored": _count(firings_scored, "firings_scored"),
        "unplanned_downtime_ns": _count(unplanned_downtime_ns, "unplanned_downtime_ns"),
        "downtime_with_reason_ns": _count(downtime_with_reason_ns, "downtime_with_reason_ns"),
    }
    for part, whole in (
        ("connected_assets", "registered_assets"),
        ("firings_with_programme", "firings"),
        ("firings_scored", "firings"),
        ("downtime_with_reason_ns", "unplanned_downtime_ns"),
    ):
        if counts[part] > counts[whole]:
            raise ValueError(f"{part} ({counts[part]}) exceeds {whole} ({counts[whole]})")
    if not np.isfinite(latency_target_s) or latency_target_s <= 0:
        raise ValueError(f"latency_target_s: expected seconds > 0, got {latency_target_s!r}")
    src = np.zeros(0, np.int64) if source_ns is None else np.asarray(source_ns, np.int64)
    rcv = np.zeros(0, np.int64) if received_ns is None else np.asarray(received_ns, np.int64)
    if src.shape != rcv.shape or src.ndim != 1:
        raise ValueError(f"source_ns {src.shape} and received_ns {rcv.shape}: expected 1-D, same")
    lat_s = (rcv - src) / NS_PER_S
    if lat_s.size:
        p50, p95, p99 = (float(v) for v in np.percentile(lat_s, [50, 95, 99]))
    else:
        p50 = p95 = p99 = None
    return PlatformObservations(
        **counts,
        latency_samples=int(lat_s.size),
        latency_p50_s=p50,
        latency_p95_s=p95,
        latency_p99_s=p99,
        latency_within_target=int(np.count_nonzero(lat_s <= latency_target_s)),
        latency_target_s=float(latency_target_s),
        skewed_samples=int(np.count_nonzero(lat_s < 0)),
    )


@dataclass(frozen=True, slots=True)
class SelfAssessment:
    """An enterprise's GB/T 39116-2020 self-assessment: a level 1..5 per element (fractions
    allowed, e.g. 2.5 from averaged sub-domain scores), made at ``assessed_ns``."""

    assessed_ns: int
    personnel: float
    technology: float
    resources: float
    manufacturing: float

    def __post_init__(self) -> None:
        for name in ELEMENTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"self-assessment {name}: expected a level 1..5, got {value!r}")
            if not (1.0 <= float(value) <= 5.0):
                raise ValueError(f"self-assessment {name}: expected a level 1..5, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], assessed_ns: int) -> SelfAssessment:
        """From ``{"personnel": 2, ...}`` (API payloads); ValueError names a missing element."""
        missing = [e for e in ELEMENTS if e not in data]
        if missing:
            raise ValueError(f"self-assessment: missing element(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(ELEMENTS))
        if unknown:
            raise ValueError(f"self-assessment: unknown element(s) {', '.join(unknown)}")
        return cls(assessed_ns, *(data[e] for e in ELEMENTS))

    @property
    def level(self) -> float:
        """Mean of the four element levels."""
        return sum(float(getattr(self, e)) for e in ELEMENTS) / len(ELEMENTS)


def expected_samples(fields: int, window_ns: int, interval_ns: int) -> int:
    """Samples the platform should have received: ``fields`` series each sampled every
    ``interval_ns`` over ``window_ns`` (the agent config's sampling interval). Report-by-
    exception sources (deadband) send fewer by design: use their publishing interval."""
    if fields < 0 or window_ns < 0 or interval_ns <= 0:
        raise ValueError("expected_samples: fields >= 0, window_ns >= 0, interval_ns > 0")
    return int(fields) * (int(window_ns) // int(interval_ns))


def _assessment(t: Table) -> tuple[str, SelfAssessment]:
    t.check_keys("enterprise", "date", *ELEMENTS)
    enterprise = t.str("enterprise")
    text = t.data.get("date")
    if isinstance(text, dt.date) and not isinstance(text, dt.datetime):
        day = text
    else:
        try:
            day = dt.date.fromisoformat(str(text))
        except ValueError:
            raise t.error("date", f"expected a date YYYY-MM-DD, got {text!r}") from None
    at = dt.datetime.combine(day, dt.time(), dt.UTC)
    at_ns = (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
    levels = [t.float(e, min=1.0, max=5.0) for e in ELEMENTS]
    return enterprise, SelfAssessment(at_ns, *levels)


def parse_assessments(table: Table) -> dict[str, list[SelfAssessment]]:
    """``[[assessment]]`` tables (enterprise, date, the four levels) by enterprise, oldest
    first; ConfigError names file, key and expectation (see examples/digitalisation/)."""
    table.check_keys("assessment")
    out: dict[str, list[SelfAssessment]] = {}
    for t in table.tables("assessment", required=True):
        enterprise, assessment = _assessment(t)
        out.setdefault(enterprise, []).append(assessment)
    for items in out.values():
        items.sort(key=lambda a: a.assessed_ns)
    return out


def load_assessments(path: str | Path) -> dict[str, list[SelfAssessment]]:
    """Read self-assessments from a TOML file (:func:`parse_assessments`)."""
    return parse_assessments(load_toml(path))


def latest_assessment(assessments: Iterable[SelfAssessment], at_ns: int) -> SelfAssessment | None:
    """The newest assessment made at or before ``at_ns`` (None if none yet)."""
    known = [a for a in assessments if a.assessed_ns <= at_ns]
    return max(known, key=lambda a: a.assessed_ns) if known else None


@dataclass(frozen=True, slots=True)
class ProgressRecord:
    """One enterprise's digitalisation progress at one time (see the module docstring)."""

    enterprise: str
    at_ns: int
    indicators: dict[str, float | None]
    measured_index: float | None
    assessed_level: float | None
    progress_index: float | None
    gap: float | None
    evidence_level: float | None
    observations: PlatformObservations
    assessment: SelfAssessment | None
    delta_index: float | None = None  # change since the previous record (progress_history)
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = {
            "enterprise": self.enterprise,
            "at_ns": self.at_ns,
            "indicators": dict(self.indicators),
            "measured_index": self.measured_index,
            "assessed_level": self.assessed_level,
            "assessed_level_name": (
                None
                if self.assessed_level is None
                else LEVEL_NAMES[max(1, min(5, int(self.assessed_level)))]
            ),
            "progress_index": self.progress_index,
            "gap": self.gap,
            "evidence_level": self.evidence_level,
            "delta_index": self.delta_index,
            "observations": self.observations.to_dict(),
            "assessment": None if self.assessment is None else dataclasses.asdict(self.assessment),
            "notes": list(self.notes),
        }
        return out


def progress(
    enterprise: str,
    at_ns: int,
    observed: PlatformObservations,
    assessment: SelfAssessment | None,
) -> ProgressRecord:
    """Combine what the platform saw with the latest self-assessment into a progress record."""
    indicators = observed.indicators()
    known = [v for v in indicators.values() if v is not None]
    measured = sum(known) / len(known) if known else None
    level = None if assessment is None else assessment.level
    a_norm = None if level is None else (level - 1.0) / 4.0
    parts = [v for v in (a_norm, measured) if v is not None]
    index = 100.0 * sum(parts) / len(parts) if parts else None
    gap = a_norm - measured if a_norm is not None and measured is not None else None
    notes = []
    missing = [k for k, v in indicators.items() if v is None]
    if missing:
        notes.append(f"not measurable this period: {', '.join(missing)}")
    if assessment is None:
        notes.append("no self-assessment: index from platform data only")
    if gap is not None and gap > GAP_NOTE_THRESHOLD:
        notes.append(f"self-assessment ahead of platform evidence by {gap:.2f}")
    if observed.skewed_samples:
        notes.append(f"{observed.skewed_samples} samples arrived before their source time")
    return ProgressRecord(
        enterprise=enterprise,
        at_ns=int(at_ns),
        indicators=indicators,
        measured_index=measured,
        assessed_level=level,
        progress_index=index,
        gap=gap,
        evidence_level=None if measured is None else 1.0 + 4.0 * measured,
        observations=observed,
        assessment=assessment,
        notes=tuple(notes),
    )


def progress_history(records: Iterable[ProgressRecord]) -> list[ProgressRecord]:
    """Sort by enterprise and time, and set ``delta_index`` to the change since each
    enterprise's previous record (None for the first, or when either index is undefined)."""
    out: list[ProgressRecord] = []
    previous: dict[str, ProgressRecord] = {}
    for r in sorted(records, key=lambda r: (r.enterprise, r.at_ns)):
        before = previous.get(r.enterprise)
        before_index = None if before is None else before.progress_index
        delta = None
        if before_index is not None and r.progress_index is not None:
            delta = r.progress_index - before_index
        rec = dataclasses.replace(r, delta_index=delta)
        out.append(rec)
        previous[r.enterprise] = rec
    return out


__all__ = [
    "ELEMENTS", "ConfigError", "PlatformObservations", "ProgressRecord", "SelfAssessment",
    "expected_samples", "latest_assessment", "load_assessments", "observe", "parse_assessments",
    "parse_toml", "progress", "progress_history",
]  # fmt: skip
