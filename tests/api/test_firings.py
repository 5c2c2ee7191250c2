"""Firings derived from telemetry, their conformance report, curve and grading."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, put, write_firing

KILN = "dalian/plant-1/firing-shop/kiln-1"
URL = "/api/v1/kilns/" + KILN + "/firings"


def test_firings_are_listed_with_programme_and_state(client, tokens, store, plant, clock):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 40 * 3600 * S
    prog = write_firing(store, kiln, "F-001", t0)
    write_firing(store, kiln, "F-002", NOW_NS - 5 * 3600 * S, until_ns=NOW_NS)  # still firing
    r = client.get(URL, headers=bearer(tokens.engineer))
    assert r.status_code == 200, r.text
    firings = r.json()
    assert [f["firing_id"] for f in firings] == ["F-002", "F-001"]
    done, running = firings[1], firings[0]
    assert done["state"] == "complete" and done["programme"] == "test-hv"
    assert done["start_ns"] == t0
    assert done["end_ns"] == t0 + int(prog.duration_s * S)  # when the id changed to ""
    assert running["state"] == "running" and running["end_ns"] is None


def test_report_of_a_conforming_and_a_hot_firing(client, tokens, store, plant):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 40 * 3600 * S
    prog = write_firing(store, kiln, "F-OK", t0)
    t1 = t0 + int(prog.duration_s * S) + 600 * S
    write_firing(store, kiln, "F-HOT", t1, hot_zone=(2, 40.0))
    ok = client.get(URL + "/F-OK", headers=bearer(tokens.engineer)).json()
    hot = client.get(URL + "/F-HOT", headers=bearer(tokens.engineer)).json()
    assert ok["score"] > 0.95 and ok["summary"]["verdict"] == "conforming"
    assert not [e for e in ok["events"] if e["kind"] == "excursion"]
    # Zone 2 ran 40 °C hot all firing: its two thermocouples are out of band, the others not.
    assert 0.6 < hot["score"] < 0.8
    hot_tcs = {e["subject"] for e in hot["events"] if e["kind"] == "excursion"}
    assert hot_tcs == {"zone2_tc1_temperature_c", "zone2_tc2_temperature_c"}
    assert all(e["peak_deviation_c"] > 35 for e in hot["events"] if e["kind"] == "excursion")
    assert hot["programme"]["name"] == "test-hv" and len(hot["segments"]) == 5
    events = client.get(URL + "/F-HOT/events", headers=bearer(tokens.engineer)).json()
    assert {e["subject"] for e in events if e["kind"] == "excursion"} == hot_tcs
    listed = {f["firing_id"]: f for f in client.get(URL, headers=bearer(tokens.engineer)).json()}
    assert listed["F-HOT"]["conformance_score"] == hot["score"]  # cached once judged


def test_curve_has_setpoint_and_every_thermocouple(client, tokens, store, plant):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 20 * 3600 * S
    write_firing(store, kiln, "F-C", t0, offset_c=5.0)
    c = client.get(URL + "/F-C/curve?points=100", headers=bearer(tokens.manager)).json()
    assert len(c["time_ns"]) <= 101 and len(c["thermocouples"]) == 8
    sp = c["setpoint_c"]
    tc = c["thermocouples"]["zone1_tc1_temperature_c"]
    diffs = [a - b for a, b in zip(tc, sp, strict=True) if a is not None and b is not None]
    assert len(diffs) > 50
    assert 3.0 < sum(diffs) / len(diffs) < 7.0  # the +5 °C offset, within window smoothing


def test_grading_is_recorded_and_replaced(client, tokens, store, plant, clock):
    write_firing(store, plant.asset(KILN), "F-G", NOW_NS - 20 * 3600 * S)
    body = {
        "good_count": 180,
        "reject_count": 20,
        "reject_reasons": {"crack": 15, "black_core": 5},
        "fired_mass_kg": 2400.0,
    }
    r = client.post(URL + "/F-G/grading", headers=bearer(tokens.engineer), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["graded_by"].startswith("t-engineer")
    body["good_count"] = 190
    body["reject_count"] = 10
    body["reject_reasons"] = {"crack": 10}
    client.post(URL + "/F-G/grading", headers=bearer(tokens.engineer), json=body)
    f = client.get(URL, headers=bearer(tokens.engineer)).json()[0]
    assert f["grading"]["good_count"] == 190 and f["grading"]["reject_reasons"] == {"crack": 10}


def test_bad_gradings_and_unknown_firings_are_problems(client, tokens, store, plant):
    write_firing(store, plant.asset(KILN), "F-B", NOW_NS - 20 * 3600 * S)
    h = bearer(tokens.engineer)
    r = client.post(
        URL + "/F-B/grading",
        headers=h,
        json={"good_count": 1, "reject_count": 1, "reject_reasons": {"crack": 5}},
    )
    assert r.status_code == 422 and "reject_count" in r.json()["detail"]
    r = client.post(URL + "/F-B/grading", headers=h, json={"good_count": -1, "reject_count": 0})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["loc"] == ["body", "good_count"]
    assert client.get(URL + "/NOPE", headers=h).status_code == 404
    assert (
        client.get(
            "/api/v1/kilns/dalian/plant-1/forming-shop/press-1/firings", headers=h
        ).status_code
        == 404
    )  # a press has no firings


def test_tunnel_kiln_zones_are_judged_against_their_own_setpoints(client, tokens, store, plant):
    tunnel = plant.asset("dalian/plant-1/firing-shop/kiln-2")  # 6 zones x 2 thermocouples
    t = NOW_NS - 6 * 3600 * S + np.arange(0, 6 * 3600, 60) * S
    profile = [300.0, 700.0, 1100.0, 1280.0, 900.0, 400.0]
    for z, sp in enumerate(profile, start=1):
        put(store, tunnel.path, f"zone{z}_setpoint_c", t[:1], [sp])
        hot = 30.0 if z == 4 else 0.0
        for k in (1, 2):
            put(store, tunnel.path, f"zone{z}_tc{k}_temperature_c", t, np.full(t.size, sp + hot))
    put(store, tunnel.path, "firing_id", t, ["kiln-2-campaign"] * t.size)
    put(store, tunnel.path, "state", t, ["heating"] * t.size)
    url = "/api/v1/kilns/dalian/plant-1/firing-shop/kiln-2/firings/kiln-2-campaign"
    r = client.get(url, headers=bearer(tokens.engineer))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["firing"]["state"] == "running"
    assert rep["summary"]["verdict"] == "nonconforming"
    assert rep["score"] == pytest.approx(10 / 12, abs=0.01)
    assert {e["subject"] for e in rep["events"]} == {
        "zone4_tc1_temperature_c",
        "zone4_tc2_temperature_c",
    }


def test_change_only_sources(client, tokens, store, plant):
    """OPC UA subscriptions report changes only: one firing_id sample per firing."""
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 30 * 3600 * S
    put(store, KILN, "firing_id", [t0, t0 + 12 * 3600 * S, t0 + 20 * 3600 * S], ["A-1", "", "A-2"])
    put(
        store,
        KILN,
        "state",
        [t0, t0 + 12 * 3600 * S, t0 + 20 * 3600 * S],
        ["heating", "idle", "heating"],
    )
    put(store, KILN, "programme", [t0 - S, t0 + 20 * 3600 * S], ["p-one", "p-two"])
    put(store, KILN, "zone1_tc1_temperature_c", [NOW_NS - S], [500.0])
    assert kiln.zones == 4
    r = client.get(URL, headers=bearer(tokens.engineer)).json()
    got = [(f["firing_id"], f["programme"], f["start_ns"], f["end_ns"]) for f in r]
    assert got == [
        ("A-2", "p-two", t0 + 20 * 3600 * S, None),
        ("A-1", "p-one", t0, t0 + 12 * 3600 * S),
    ]


def test_coarsely_sampled_firing_is_still_judged(client, tokens, store, plant):
    """A kiln sampled every 10 min (slow OPC UA publishing, the demo's fast clock) is judged,
    not "insufficient data" (the analytics default never bridges more than 5 min)."""
    write_firing(store, plant.asset(KILN), "F-SLOW", NOW_NS - 20 * 3600 * S, sample_s=600)
    rep = client.get(URL + "/F-SLOW", headers=bearer(tokens.engineer)).json()
    assert rep["summary"]["verdict"] == "conforming" and rep["summary"]["coverage"] > 0.9


def test_running_firing_is_in_progress_not_insufficient(client, tokens, store, plant):
    prog = write_firing(store, plant.asset(KILN), "F-RUN", NOW_NS - 5 * 3600 * S, until_ns=NOW_NS)
    assert prog.duration_s > 10 * 3600  # only half of the programme has happened
    rep = client.get(URL + "/F-RUN", headers=bearer(tokens.engineer)).json()
    assert rep["firing"]["state"] == "running"
    assert rep["summary"]["verdict"] == "in progress"
    assert rep["summary"]["coverage"] < 0.5 < 0.95 < rep["summary"]["coverage_so_far"]
    assert rep["firing"]["conformance_score"] is None  # not cached until the firing ends
