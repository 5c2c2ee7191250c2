"""Alarm evaluation (silent, broken thermocouple, deviation, stall) and acknowledgement."""

from __future__ import annotations

import numpy as np

from api.services.alarms import evaluate_alarms
from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, put

KILN = "dalian/plant-1/firing-shop/kiln-1"


def _kiln_now(store, *, tc: dict[str, float], setpoint: float, state: str = "heating") -> None:
    for z in range(1, 5):
        put(store, KILN, f"zone{z}_setpoint_c", [NOW_NS - 10 * S], [setpoint])
        for t in (1, 2):
            f = f"zone{z}_tc{t}_temperature_c"
            put(store, KILN, f, [NOW_NS - 10 * S], [tc.get(f, setpoint)])
    put(store, KILN, "state", [NOW_NS - 10 * S], [state])


def _active(meta, kind=None):
    return [
        (a.kind, a.subject)
        for a in meta.alarms(asset=KILN, active_only=True)
        if kind is None or a.kind == kind
    ]


def test_deviation_and_broken_thermocouple_raise_then_clear(app, store, meta, clock):
    ctx = app.state.ctx
    _kiln_now(
        store,
        tc={"zone2_tc1_temperature_c": 845.0, "zone3_tc2_temperature_c": 1800.0},
        setpoint=800.0,
        state="soaking",
    )
    evaluate_alarms(ctx)
    assert sorted(_active(meta)) == [
        ("broken_thermocouple", "zone3_tc2_temperature_c"),
        ("deviation", "zone2_tc1_temperature_c"),
    ]
    first = meta.alarms(asset=KILN, active_only=True)
    evaluate_alarms(ctx)  # still holding: the same alarms, refreshed, not duplicated
    assert {a.id for a in meta.alarms(asset=KILN, active_only=True)} == {a.id for a in first}
    clock.now_ns += 60 * S
    _kiln_now(store, tc={}, setpoint=800.0, state="soaking")
    put(store, KILN, "zone1_tc1_temperature_c", [clock.now_ns - S], [800.0])
    evaluate_alarms(ctx)
    assert _active(meta) == []
    ended = meta.alarms(asset=KILN)
    assert len(ended) == 2 and all(a.end_ns == clock.now_ns for a in ended)


def test_silent_and_never_seen_assets(app, store, meta, clock):
    put(store, KILN, "state", [NOW_NS - 3600 * S], ["idle"])
    evaluate_alarms(app.state.ctx)
    silent = {a.asset: a.message for a in meta.alarms(active_only=True) if a.kind == "silent"}
    assert "silent for 3600 s" in silent[KILN]
    assert "never reported" in silent["dalian/plant-1/forming-shop/press-1"]


def test_stall_while_heating(app, store, meta):
    t = NOW_NS - 30 * 60 * S + np.arange(0, 30 * 60, 60) * S
    for z in range(1, 5):
        put(store, KILN, f"zone{z}_setpoint_c", t, 500 + np.arange(t.size) * 1.0)  # 60 °C/h
        rate = 2.0 if z == 3 else 60.0  # zone 3 creeps at 2 °C/h
        for k in (1, 2):
            put(store, KILN, f"zone{z}_tc{k}_temperature_c", t, 500 + (t - t[0]) / 3.6e12 * rate)
    put(store, KILN, "state", [t[0]], ["heating"])
    evaluate_alarms(app.state.ctx)
    assert _active(meta, "stall") == [("stall", "zone3")]


def test_list_and_acknowledge(app, client, tokens, store, meta):
    _kiln_now(store, tc={"zone1_tc1_temperature_c": 900.0}, setpoint=800.0)
    evaluate_alarms(app.state.ctx)
    h = bearer(tokens.engineer)
    alarms = client.get("/api/v1/alarms", headers=h, params={"active": True}).json()
    dev = next(a for a in alarms if a["kind"] == "deviation")
    assert "+100.0 °C" in dev["message"] and dev["acked_ns"] is None
    r = client.post(f"/api/v1/alarms/{dev['id']}/ack", headers=h)
    assert r.status_code == 200 and r.json()["acked_by"].startswith("t-engineer")
    # Fushun's engineer can neither see nor acknowledge Dalian's alarm.
    other = bearer(tokens.other_engineer)
    assert all(
        a["enterprise"] == "fushun" for a in client.get("/api/v1/alarms", headers=other).json()
    )
    assert client.post(f"/api/v1/alarms/{dev['id']}/ack", headers=other).status_code == 404
    assert client.get("/api/v1/alarms", headers=bearer(tokens.town)).status_code == 403


def test_thermocouple_silent_while_kiln_reports_is_broken(app, store, meta):
    put(store, KILN, "zone4_tc2_temperature_c", [NOW_NS - 600 * S], [800.0])  # 10 min ago
    for z in range(1, 5):
        put(store, KILN, f"zone{z}_setpoint_c", [NOW_NS - 10 * S], [800.0])
        for t in (1, 2):
            if (z, t) != (4, 2):
                put(store, KILN, f"zone{z}_tc{t}_temperature_c", [NOW_NS - 10 * S], [801.0])
    put(store, KILN, "state", [NOW_NS - 10 * S], ["soaking"])
    evaluate_alarms(app.state.ctx)
    assert _active(meta) == [("broken_thermocouple", "zone4_tc2_temperature_c")]
    (alarm,) = meta.alarms(asset=KILN, active_only=True)
    assert "no reading for 600 s" in alarm.message


def test_background_loop_evaluates_alarms(settings, store, meta, plant, clock):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.servers import wait_until

    app = create_app(
        settings.model_copy(update={"alarm_interval_s": 0.05}),
        store=store,
        meta=meta,
        plant=plant,
        clock=clock,
    )
    with TestClient(app):
        # Nothing has reported: every asset of the plant model gets a "never reported" alarm.
        wait_until(lambda: len(meta.alarms(active_only=True)) == 20, 20, "the alarm loop")
    assert {a.kind for a in meta.alarms()} == {"silent"}
