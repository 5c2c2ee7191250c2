"""Digitalisation progress (measured + self-assessed) and the town overview."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, put, write_firing, write_press_shift

KILN = "dalian/plant-1/firing-shop/kiln-1"
LEVELS = {"personnel": 2, "technology": 3, "resources": 2, "manufacturing": 3}


def test_manager_submits_assessment_and_progress_shows_it(client, tokens, store, clock):
    h = bearer(tokens.manager)
    assert (
        client.post(
            "/api/v1/enterprises/dalian/digitalisation/assessments",
            headers=bearer(tokens.engineer),
            json=LEVELS,
        ).status_code
        == 403
    )
    r = client.post(
        "/api/v1/enterprises/dalian/digitalisation/assessments",
        headers=h,
        json={**LEVELS, "note": "2025 review"},
    )
    assert r.status_code == 201, r.text
    # Kiln-1 reports every 10 s today; the other three assets say nothing.
    t = NOW_NS - 3600 * S + np.arange(360) * 10 * S
    for f in ("zone1_tc1_temperature_c", "zone1_tc2_temperature_c"):
        put(store, KILN, f, t, np.full(t.size, 500.0))
    p = client.get(
        "/api/v1/enterprises/dalian/digitalisation",
        headers=h,
        params={"period": "day", "periods": 3},
    ).json()
    assert len(p["points"]) == 3 and p["assessments"][0]["note"] == "2025 review"
    now = p["points"][-1]
    assert now["indicators"]["connected"] == pytest.approx(0.25)
    assert now["assessed_level"] == pytest.approx(2.5)
    assert p["points"][0]["assessed_level"] is None  # submitted after that day
    assert now["progress_index"] is not None and now["end_ns"] == NOW_NS


def test_assessment_levels_are_validated(client, tokens):
    r = client.post(
        "/api/v1/enterprises/dalian/digitalisation/assessments",
        headers=bearer(tokens.manager),
        json={**LEVELS, "personnel": 6},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "personnel"]


def test_town_overview_side_by_side(client, tokens, store, plant):
    write_firing(store, plant.asset(KILN), "F-T", NOW_NS - 20 * 3600 * S)
    write_press_shift(
        store,
        plant.asset("fushun/plant-1/forming-shop/press-1"),
        NOW_NS - 8 * 3600 * S,
        8.0,
        breakdown_h=2.0,
    )
    admin = bearer(tokens.admin)
    client.get(f"/api/v1/kilns/{KILN}/firings/F-T", headers=admin)  # judge it (caches score)
    client.post(
        f"/api/v1/kilns/{KILN}/firings/F-T/grading",
        headers=admin,
        json={"good_count": 95, "reject_count": 5, "fired_mass_kg": 2000.0},
    )
    r = client.get("/api/v1/town/overview", headers=bearer(tokens.town))
    assert r.status_code == 200, r.text
    rows = {e["enterprise"]: e for e in r.json()["enterprises"]}
    assert len(rows) == 5
    dalian = rows["dalian"]
    assert dalian["firings"] == 1 and dalian["conformance_mean"] > 0.95
    assert dalian["energy_kwh_per_t"] == pytest.approx(5000 / 2.0, rel=0.02)
    # Time-weighted over all four assets: one press ran 6 h of 24, the others sent nothing.
    assert rows["fushun"]["availability"] == pytest.approx(6 / 96, abs=0.005)
    # Enterprises that never sent data have no OEE (not 0 %) and stay out of the town's.
    assert rows["xinghai"]["oee"] is None and rows["xinghai"]["data_age_s"] is None
    reporting = [rows["dalian"]["oee"], rows["fushun"]["oee"]]
    assert None not in reporting
    town_oee = r.json()["town_oee"]
    assert min(reporting) <= town_oee <= max(reporting)
    assert client.get("/api/v1/town/overview", headers=bearer(tokens.manager)).status_code == 403
