"""An enterprise's digitalisation progress over time, via ``analytics.digitalisation``.

Per period (epoch-aligned days or weeks, so one downsampled store query per series serves
every period) the platform observes: assets connected (any thermocouple or counter sample in
the period), data completeness (samples received / expected at ``expected_sample_interval_s``),
timeliness (arrival - source time of the latest readings, current period only: the Store
protocol keeps receive times only on the latest readings), firings with a programme and a
score (metadata store) and unplanned downtime with a reason code (state timelines). The latest
self-assessment submitted by the end of a period is combined with them by
``analytics.digitalisation.progress``.
"""

from __future__ import annotations

import numpy as np

from analytics.digitalisation import (
    ProgressRecord,
    SelfAssessment,
    observe,
    progress,
    progress_history,
)
from api.metadata.store import AssessmentRow, MetadataStore
from api.services.timeline import state_changes
from core.plant import Enterprise, Kiln, PlantModel
from ingest.contracts import Store

PERIOD_NS = {"day": 86400 * 10**9, "week": 7 * 86400 * 10**9}
UNPLANNED_DOWN = ("breakdown", "idle", "starved", "blocked")


def _assets(e: Enterprise):
    return [a for s in e.sites for ln in s.lines for a in ln.assets]


def _data_fields(asset) -> list[str]:
    if isinstance(asset, Kiln):
        return asset.thermocouple_fields()
    return ["count_total"]


def _assessment(rows: list[AssessmentRow], at_ns: int) -> SelfAssessment | None:
    known = [r for r in rows if r.submitted_ns <= at_ns]
    if not known:
        return None
    r = known[-1]
    return SelfAssessment.from_mapping(r.levels, r.submitted_ns)


def enterprise_progress(
    store: Store,
    meta: MetadataStore,
    plant: PlantModel,
    enterprise: Enterprise,
    *,
    now_ns: int,
    period: str,
    periods: int,
    expected_interval_s: float,
    silent_after_s: float,
) -> list[tuple[int, int, ProgressRecord]]:
    """``(start_ns, end_ns, record)`` for the last ``periods`` periods up to now, oldest first."""
    step = PERIOD_NS[period]
    last_start = (now_ns - 1) // step * step  # the period holding the latest instant
    starts = [last_start - i * step for i in range(periods - 1, -1, -1)]
    lo, hi = starts[0], now_ns + 1
    assets = _assets(enterprise)
    counts = np.zeros((len(assets), len(starts)))  # samples received per asset and period
    for i, a in enumerate(assets):
        for f in _data_fields(a):
            s = store.series(a.path, f, lo, hi, window_ns=step, aggregate="count")
            idx = ((s.time_ns - lo) // step).astype(np.int64)
            ok = (idx >= 0) & (idx < len(starts))
            np.add.at(counts[i], idx[ok], s.values.astype(np.float64)[ok])
    fields_per_asset = np.array([len(_data_fields(a)) for a in assets], dtype=np.float64)
    firings = meta.firings(enterprises=[enterprise.id], start_ns=lo, end_ns=hi)
    assessments = meta.assessments(enterprise.id)
    latest_src: list[int] = []
    latest_rcv: list[int] = []
    for a in assets:
        for r in store.latest(a.path).values():
            if now_ns - r.source_time_ns <= silent_after_s * 1e9:
                latest_src.append(r.source_time_ns)
                latest_rcv.append(r.received_time_ns)
    records = []
    for k, start in enumerate(starts):
        end = min(start + step, now_ns)
        span_s = max(end - start, 0) / 1e9
        in_period = [f for f in firings if f.start_ns < end and (f.end_ns or now_ns) >= start]
        down = with_reason = 0
        for a in assets:
            ch = state_changes(store, a.path, start, end, kiln=isinstance(a, Kiln))
            bounds = [*ch.start_ns.tolist(), end]
            for j, st in enumerate(ch.state):
                dur = max(0, min(bounds[j + 1], end) - max(bounds[j], start))
                if st in UNPLANNED_DOWN:
                    down += dur
                    with_reason += dur if ch.reason[j] else 0
        current = k == len(starts) - 1
        observed = observe(
            registered_assets=len(assets),
            connected_assets=int((counts[:, k] > 0).sum()),
            expected_samples=int(fields_per_asset.sum() * span_s / expected_interval_s),
            received_samples=int(counts[:, k].sum()),
            source_ns=np.array(latest_src if current else [], np.int64),
            received_ns=np.array(latest_rcv if current else [], np.int64),
            firings=len(in_period),
            firings_with_programme=sum(1 for f in in_period if f.programme_segments),
            firings_scored=sum(1 for f in in_period if f.conformance_score is not None),
            unplanned_downtime_ns=down,
            downtime_with_reason_ns=with_reason,
        )
        records.append(
            (start, end, progress(enterprise.id, end, observed, _assessment(assessments, end)))
        )
    history = progress_history(r for _, _, r in records)
    return [(s, e, h) for (s, e, _), h in zip(records, history, strict=True)]
