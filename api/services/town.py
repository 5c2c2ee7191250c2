"""The town overview: the key enterprises side by side, in aggregates only.

Called by routes/town.py. Everything here is an aggregate over an enterprise (OEE rolled up,
mean conformance, energy per tonne, digitalisation index, data freshness): no series, no firing
details leave this module, which is what lets a town official call it.
"""

from __future__ import annotations

from analytics.rollup import rollup
from api.metadata.store import MetadataStore
from api.schemas.town import EnterpriseSummary, TownOverview
from api.services.digitalisation import enterprise_progress
from api.services.oee import AssetOee, assets_under, scope_oee, shift_calendar
from api.services.oee_cache import OeeCache
from api.services.status import asset_status
from api.settings import Settings
from core.plant import PlantModel
from ingest.contracts import Store


def _energy_kwh(store: Store, asset: str, start: int, end: int) -> float | None:
    s = store.series(asset, "energy_kwh", start, end + 1)
    if len(s) < 2:
        return None
    return float(s.values[-1] - s.values[0])


def town_overview(
    store: Store,
    meta: MetadataStore,
    plant: PlantModel,
    settings: Settings,
    *,
    now_ns: int,
    start_ns: int,
    end_ns: int,
    cache: OeeCache[AssetOee] | None = None,
) -> TownOverview:
    """Each key enterprise's aggregates over ``[start_ns, end_ns)``; freshness at ``now_ns``.
    Per-asset OEE goes through ``cache``; the rest (firings, energy, digitalisation, data
    age) is read afresh on every call."""
    shifts = shift_calendar(settings.shifts_path)
    out = []
    totals = []
    for e in plant.enterprises:
        if not e.key:
            continue
        _, total, _, _ = scope_oee(
            store,
            meta,
            assets_under(plant, e.id),
            e.id,
            start_ns,
            end_ns,
            "window",
            shifts,
            settings,
            cache,
        )
        ended = [
            f
            for f in meta.firings(enterprises=[e.id], start_ns=start_ns, end_ns=end_ns)
            if f.end_ns is not None and start_ns <= f.end_ns < end_ns
        ]
        scores = [f.conformance_score for f in ended if f.conformance_score is not None]
        gradings = {(g.asset, g.firing_id): g for g in meta.gradings(enterprises=[e.id])}
        kwh = mass_kg = 0.0
        for f in ended:
            g = gradings.get((f.asset, f.firing_id))
            if g is None or not g.fired_mass_kg:
                continue
            energy = (
                f.energy_kwh
                if f.energy_kwh is not None
                else _energy_kwh(store, f.asset, f.start_ns, f.end_ns or end_ns)
            )
            if energy is not None and energy >= 0:
                kwh += energy
                mass_kg += g.fired_mass_kg
        total_assets = connected = 0
        last_seen = None
        for a in assets_under(plant, e.id):
            st = asset_status(store, a.path, now_ns, settings.silent_after_s)
            total_assets += 1
            connected += st.connected
            if st.last_seen_ns is not None:
                last_seen = max(last_seen or 0, st.last_seen_ns)
        # An enterprise that never sent data has no OEE to show: its planned time would count
        # as all loss (no-data time is a loss to the OEE core) and drag the town's figure
        # down for a reason "data age: no data" already shows.
        reporting = last_seen is not None
        if reporting:
            totals.append(total)
        progress = enterprise_progress(
            store,
            meta,
            plant,
            e,
            now_ns=now_ns,
            period="week",
            periods=1,
            expected_interval_s=settings.expected_sample_interval_s,
            silent_after_s=settings.silent_after_s,
        )
        out.append(
            EnterpriseSummary(
                enterprise=e.id,
                name=e.name,
                oee=total.oee if reporting else None,
                availability=total.availability if reporting else None,
                performance=total.performance if reporting else None,
                quality=total.quality if reporting else None,
                firings=len(ended),
                conformance_mean=sum(scores) / len(scores) if scores else None,
                energy_kwh_per_t=kwh / (mass_kg / 1000) if mass_kg > 0 else None,
                digitalisation_index=progress[-1][2].progress_index if progress else None,
                assets_total=total_assets,
                assets_connected=connected,
                last_seen_ns=last_seen,
                data_age_s=None if last_seen is None else (now_ns - last_seen) / 1e9,
            )
        )
    town = rollup(totals, scope="", period="")
    return TownOverview(start_ns=start_ns, end_ns=end_ns, enterprises=out, town_oee=town.oee)
