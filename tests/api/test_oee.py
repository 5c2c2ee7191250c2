"""OEE of a press and a kiln through the API, and roll-ups."""

from __future__ import annotations

import pytest

from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, write_firing, write_press_shift

PRESS = "dalian/plant-1/forming-shop/press-1"  # ideal cycle 90 s
KILN = "dalian/plant-1/firing-shop/kiln-1"
# 2025-11-25 08:00 Asia/Shanghai = 00:00 UTC; shift A runs 08:00-16:00 local.
SHIFT_A = NOW_NS - 86400 * S


def test_press_oee_per_shift_with_losses(client, tokens, store, plant):
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=1.0, cycle_s=100.0)
    r = client.get(
        "/api/v1/oee",
        headers=bearer(tokens.engineer),
        params={
            "scope": PRESS,
            "bucket": "shift",
            "start_ns": SHIFT_A,
            "end_ns": SHIFT_A + 8 * 3600 * S,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["level"] == "asset"
    (a,) = body["periods"]
    assert a["period"] == "2025-11-25/A"
    # 7 h running of 8: availability 7/8; 90 s ideal vs 100 s actual cycles: performance 0.9.
    assert a["availability"] == pytest.approx(7 / 8, abs=0.01)
    assert a["performance"] == pytest.approx(0.9, abs=0.02)
    assert a["quality"] == pytest.approx(0.95, abs=0.01)
    assert a["oee"] == pytest.approx(7 / 8 * 0.9 * 0.95, abs=0.02)
    assert a["losses_s"]["equipment_failure_s"] == pytest.approx(3600, abs=120)
    assert a["downtime_by_reason_s"]["hydraulic leak"] == pytest.approx(3600, abs=120)


def test_line_rollup_is_time_weighted(client, tokens, store, plant):
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=4.0)
    write_press_shift(
        store, plant.asset("dalian/plant-1/forming-shop/press-2"), SHIFT_A, 8.0, breakdown_h=0.0
    )
    params = {"bucket": "window", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * 3600 * S}
    line = client.get(
        "/api/v1/oee",
        headers=bearer(tokens.manager),
        params={**params, "scope": "dalian/plant-1/forming-shop"},
    ).json()
    # availability 0.5 and 1.0 over equal planned time: 0.75 for the line
    assert line["level"] == "line"
    assert line["total"]["availability"] == pytest.approx(0.75, abs=0.01)


def test_kiln_oee_counts_firings_and_takes_late_gradings(client, tokens, store, plant, clock):
    kiln = plant.asset(KILN)
    write_firing(store, kiln, "F-1", NOW_NS - 20 * 3600 * S)
    params = {
        "scope": KILN,
        "bucket": "window",
        "start_ns": NOW_NS - 24 * 3600 * S,
        "end_ns": NOW_NS,
    }
    h = bearer(tokens.engineer)
    before = client.get("/api/v1/oee", headers=h, params=params).json()["total"]
    assert before["produced"] == 1 and before["quality"] is None
    client.post(
        f"/api/v1/kilns/{KILN}/firings/F-1/grading",
        headers=h,
        json={"good_count": 90, "reject_count": 10},
    )
    after = client.get("/api/v1/oee", headers=h, params=params).json()["total"]
    assert after["quality"] == pytest.approx(0.9)
    assert after["availability"] == pytest.approx(11.5 / 24, abs=0.02)


def test_scope_validation(client, tokens):
    h = bearer(tokens.admin)
    assert client.get("/api/v1/oee", headers=h, params={"scope": "a/b/c/d/e"}).status_code == 422
    assert client.get("/api/v1/oee", headers=h, params={"scope": "nowhere"}).status_code == 404
    r = client.get("/api/v1/oee", headers=h, params={"start_ns": 10, "end_ns": 5})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
