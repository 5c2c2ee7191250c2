"""Plant model with connection status; latest values; downsampled series; state timeline."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.contracts import StoreUnavailable
from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, put, write_press_shift

KILN = "dalian/plant-1/firing-shop/kiln-1"
PRESS = "dalian/plant-1/forming-shop/press-1"


def test_plant_shows_connected_and_last_seen(client, tokens, store, plant):
    put(store, KILN, "zone1_tc1_temperature_c", [NOW_NS - 30 * S], [812.5])
    put(store, PRESS, "state", [NOW_NS - 600 * S], ["running"])  # 10 min ago: silent
    body = client.get("/api/v1/plant", headers=bearer(tokens.admin)).json()
    assert [e["id"] for e in body["enterprises"]] == [e.id for e in plant.enterprises]
    dalian = body["enterprises"][0]
    assets = {a["path"]: a for s in dalian["sites"] for ln in s["lines"] for a in ln["assets"]}
    assert assets[KILN]["connected"] is True and assets[KILN]["last_seen_ns"] == NOW_NS - 30 * S
    assert assets[PRESS]["connected"] is False and assets[PRESS]["last_seen_ns"] == NOW_NS - 600 * S
    assert assets["dalian/plant-1/firing-shop/kiln-2"]["last_seen_ns"] is None
    assert dalian["assets_connected"] == 1 and dalian["assets_total"] == 4


def test_engineer_sees_own_enterprise_town_sees_no_equipment(client, tokens):
    eng = client.get("/api/v1/plant", headers=bearer(tokens.engineer)).json()
    assert [e["id"] for e in eng["enterprises"]] == ["dalian"]
    town = client.get("/api/v1/plant", headers=bearer(tokens.town)).json()
    assert len(town["enterprises"]) >= 5 and all(e["sites"] == [] for e in town["enterprises"])


def test_latest_and_series(client, tokens, store):
    t = NOW_NS - 3600 * S + np.arange(360) * 10 * S  # an hour at 10 s
    put(store, KILN, "zone1_tc1_temperature_c", t, np.linspace(100, 460, 360))
    put(store, KILN, "state", [t[0]], ["heating"])
    h = bearer(tokens.engineer)
    latest = client.get(f"/api/v1/assets/{KILN}/latest", headers=h).json()
    assert latest["connected"] is True
    assert latest["fields"]["zone1_tc1_temperature_c"]["value"] == pytest.approx(460.0)
    assert latest["fields"]["state"]["value"] == "heating"
    s = client.get(
        f"/api/v1/assets/{KILN}/series",
        headers=h,
        params={
            "field": "zone1_tc1_temperature_c",
            "start_ns": int(t[0]),
            "end_ns": NOW_NS,
            "points": 6,
            "aggregate": "max",
        },
    ).json()
    assert s["window_s"] == 600 and 6 <= len(s["values"]) <= 7
    assert max(s["values"]) == pytest.approx(460.0)
    assert s["time_ns"] == sorted(s["time_ns"]) and all(x % (600 * S) == 0 for x in s["time_ns"])
    r = client.get(
        f"/api/v1/assets/{KILN}/series",
        headers=h,
        params={
            "field": "zone1_tc1_temperature_c",
            "start_ns": int(t[0]),
            "end_ns": NOW_NS,
            "resolution_s": 60,
            "aggregate": "count",
        },
    ).json()
    assert r["window_s"] == 60 and sum(r["values"]) == 360 and len(r["values"]) == 60
    r = client.get(
        f"/api/v1/assets/{KILN}/series",
        headers=h,
        params={
            "field": "zone1_tc1_temperature_c",
            "start_ns": NOW_NS - 30 * 86400 * S,
            "end_ns": NOW_NS,
            "resolution_s": 1,
        },
    )
    assert r.status_code == 422 and "exceed 5000 points" in r.json()["detail"]


def test_series_validation_is_problem_details(client, tokens, store):
    h = bearer(tokens.engineer)
    for params in (
        {"field": "x; DROP MEASUREMENT y"},
        {"field": "a", "points": 0},
        {"field": "a", "start_ns": 10, "end_ns": 5},
        {"field": "a", "aggregate": "median"},
    ):
        r = client.get(f"/api/v1/assets/{KILN}/series", headers=h, params=params)
        assert r.status_code == 422, params
        assert r.headers["content-type"] == "application/problem+json"
    put(store, KILN, "state", [NOW_NS - 60 * S], ["heating"])
    r = client.get(f"/api/v1/assets/{KILN}/series", headers=h, params={"field": "state"})
    assert r.status_code == 422 and "text" in r.json()["detail"]  # no mean of words
    r = client.get(
        f"/api/v1/assets/{KILN}/series", headers=h, params={"field": "state", "aggregate": "last"}
    )
    assert r.status_code == 200 and r.json()["values"] == ["heating"]
    r = client.get("/api/v1/assets/dalian/plant-1/firing-shop/kiln-9/latest", headers=h)
    assert r.status_code == 404 and "kiln-9" in r.json()["detail"]


def test_state_timeline(client, tokens, store, plant):
    write_press_shift(store, plant.asset(PRESS), NOW_NS - 8 * 3600 * S, 8.0, breakdown_h=2.0)
    r = client.get(
        f"/api/v1/assets/{PRESS}/states",
        headers=bearer(tokens.engineer),
        params={"start_ns": NOW_NS - 8 * 3600 * S, "end_ns": NOW_NS},
    ).json()
    assert [(s["state"], s["reason"]) for s in r["spans"]] == [
        ("running", ""),
        ("breakdown", "hydraulic leak"),
        ("running", ""),
    ]
    assert r["spans"][1]["end_ns"] - r["spans"][1]["start_ns"] == 2 * 3600 * S


def test_store_down_is_503_problem(app, client, tokens, store, monkeypatch):
    def down(*a, **k):
        raise StoreUnavailable("refused")

    monkeypatch.setattr(store, "latest", down)
    r = client.get(f"/api/v1/assets/{KILN}/latest", headers=bearer(tokens.engineer))
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["content-type"] == "application/problem+json"


def test_series_written_by_another_process_after_start_are_seen(
    tmp_path, meta, plant, clock, tokens
):
    """The agent and the API share the embedded store file: series the agent creates after the
    API opened the file must show (they did not, before the store looked them up on a miss)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from ingest.store_sqlite import SQLiteStore

    api_store = SQLiteStore(str(tmp_path / "telemetry.db"))
    agent_store = SQLiteStore(str(tmp_path / "telemetry.db"))
    app = create_app(
        Settings(alarm_interval_s=0), store=api_store, meta=meta, plant=plant, clock=clock
    )
    with TestClient(app) as c:
        put(agent_store, KILN, "firing_id", [NOW_NS - 3600 * S], ["F-LATE"])
        put(agent_store, KILN, "state", [NOW_NS - 3600 * S], ["heating"])
        r = c.get(f"/api/v1/kilns/{KILN}/firings", headers=bearer(tokens.engineer)).json()
        assert [f["firing_id"] for f in r] == ["F-LATE"]
    agent_store.close()
    api_store.close()
