"""Recorded firings are history: what a later scan of the telemetry sees does not rewrite it.

A firing's end is its own (the next firing id, or the kiln going idle after it), never the
kiln's state at the time of the scan; a scan over a window that begins after a firing did sees
only part of it and must not move its recorded start (or its programme) later. Both feed kiln
OEE for past windows. Real embedded store, real metadata store, the app's settable clock.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.programme import Programme
from api.services.firings import derive_firings
from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import SEGMENTS, S, put, write_firing

KILN = "dalian/plant-1/firing-shop/kiln-1"
URL = "/api/v1/kilns/" + KILN + "/firings"
H = 3600 * S
DURATION_NS = int(Programme.from_segments(SEGMENTS).duration_s * S)


def listed(client, token, **params) -> dict[str, tuple]:
    r = client.get(URL, headers=bearer(token), params=params)
    assert r.status_code == 200, r.text
    return {f["firing_id"]: (f["start_ns"], f["end_ns"], f["state"]) for f in r.json()}


def kiln_oee(client, token, start_ns: int, end_ns: int) -> dict:
    r = client.get(
        "/api/v1/oee",
        headers=bearer(token),
        params={"scope": KILN, "bucket": "window", "start_ns": start_ns, "end_ns": end_ns},
    )
    assert r.status_code == 200, r.text
    return r.json()["total"]


# -- a firing's end is its own -----------------------------------------------------------------


def test_derived_end_is_the_firings_own_not_the_kilns_state_now(store, plant):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 40 * H
    write_firing(store, kiln, "F-1", t0)  # "" and idle when it ends
    e1 = t0 + DURATION_NS
    # Afterwards the kiln keeps reporting idle every minute, as the simulators do.
    idle = np.arange(e1 + 60 * S, e1 + 3 * H, 60 * S)
    put(store, KILN, "state", idle, ["idle"] * idle.size)
    put(store, KILN, "firing_id", idle, [""] * idle.size)

    def seen(start_ns: int, end_ns: int) -> list[tuple]:
        return [
            (f.firing_id, f.start_ns, f.end_ns)
            for f in derive_firings(store, kiln, start_ns, end_ns)
        ]

    assert seen(t0 - H, e1 + 3 * H) == [("F-1", t0, e1)]
    # A window that ended while F-1 fired shows it in progress, whatever the kiln does now
    # (before: "ended" at the kiln's latest idle sample, hours after the window).
    assert seen(t0 - H, t0 + 5 * H) == [("F-1", t0, None)]
    t2 = e1 + 4 * H
    write_firing(store, kiln, "F-2", t2, until_ns=t2 + H)
    assert seen(t0 - H, t2 + H) == [("F-1", t0, e1), ("F-2", t2, None)]
    assert seen(t0 - H, t0 + 5 * H) == [("F-1", t0, None)]


def test_kiln_oee_of_a_past_window_holds_when_the_next_firing_starts(
    client, tokens, store, plant, clock
):
    """A change-only (OPC UA) kiln whose controller keeps the last firing id until the next
    firing: A-1 ended when the kiln went idle, and stays ended once A-2 starts."""
    t0 = NOW_NS - 30 * H
    put(store, KILN, "firing_id", [t0], ["A-1"])
    put(store, KILN, "programme", [t0], ["test-hv"])
    put(store, KILN, "programme_segments", [t0], [json.dumps(SEGMENTS)])
    put(store, KILN, "state", [t0 - 10 * H, t0, t0 + 12 * H], ["idle", "heating", "idle"])
    window = (t0 - 2 * H, t0 + 13 * H)
    clock.now_ns = window[1] + 120 * S  # just after the window: still live, not kept
    h = bearer(tokens.engineer)
    before = kiln_oee(client, tokens.engineer, *window)
    assert before["produced"] == 1
    assert before["availability"] == pytest.approx(12 / 15, abs=0.01)
    assert before["performance"] == pytest.approx(DURATION_NS / (12 * H), abs=0.01)
    assert listed(client, tokens.engineer) == {"A-1": (t0, t0 + 12 * H, "complete")}

    # Eight hours later the next firing starts (the window is long settled by now).
    t2 = t0 + 20 * H
    put(store, KILN, "firing_id", [t2], ["A-2"])
    put(store, KILN, "state", [t2], ["heating"])
    clock.now_ns = t2 + 2 * H
    after = kiln_oee(client, tokens.engineer, *window)
    assert after["produced"] == 1  # before the fix: 0, A-1 "running" again
    assert after == before
    assert listed(client, tokens.engineer) == {
        "A-1": (t0, t0 + 12 * H, "complete"),  # before the fix: ended when A-2 started
        "A-2": (t2, None, "running"),
    }
    r = client.get(URL + "/A-1", headers=h).json()
    assert r["firing"]["end_ns"] == t0 + 12 * H and r["firing"]["state"] == "complete"


def test_a_scan_of_a_window_ending_mid_firing_does_not_reopen_it(
    client, tokens, store, plant, clock
):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 40 * H
    write_firing(store, kiln, "F-1", t0)
    e1 = t0 + DURATION_NS
    clock.now_ns = e1 + H
    assert listed(client, tokens.engineer) == {"F-1": (t0, e1, "complete")}
    t2 = e1 + 4 * H
    write_firing(store, kiln, "F-2", t2, until_ns=t2 + 2 * H)
    clock.now_ns = t2 + 2 * H
    # The firings of a past shift that ended while F-1 fired: F-1 is recorded complete.
    shift = listed(client, tokens.engineer, start_ns=t0 - 4 * H, end_ns=t0 + 4 * H)
    assert shift == {"F-1": (t0, e1, "complete")}  # before the fix: (t0, None, "running")
    assert listed(client, tokens.engineer) == {
        "F-1": (t0, e1, "complete"),
        "F-2": (t2, None, "running"),
    }


# -- a scan never moves a known start later ---------------------------------------------------


def test_a_scan_starting_mid_firing_keeps_the_recorded_start_and_programme(
    client, tokens, store, plant, clock
):
    kiln = plant.asset(KILN)
    t0 = NOW_NS - 40 * H
    write_firing(store, kiln, "F-1", t0)  # the programme is sent once, when it starts
    e1 = t0 + DURATION_NS
    assert listed(client, tokens.engineer) == {"F-1": (t0, e1, "complete")}
    # A window from the middle of the firing on sees it from there (and no programme).
    part = client.get(
        URL, headers=bearer(tokens.engineer), params={"start_ns": t0 + 5 * H, "end_ns": NOW_NS}
    ).json()
    assert [(f["start_ns"], f["end_ns"], f["programme"]) for f in part] == [(t0, e1, "test-hv")]
    rep = client.get(URL + "/F-1", headers=bearer(tokens.engineer)).json()
    assert rep["firing"]["start_ns"] == t0
    assert rep["programme"]["name"] == "test-hv" and len(rep["segments"]) == 5
    assert rep["summary"]["verdict"] == "conforming" and rep["summary"]["coverage"] > 0.95


def test_kiln_oee_of_a_window_whose_scan_starts_mid_firing(client, tokens, store, plant, meta):
    """The nameplate rate of a shuttle kiln is one firing per programme duration of the firings
    around the window; a scan that began mid-firing lost that firing's programme."""
    kiln = plant.asset(KILN)
    t1 = NOW_NS - 50 * H
    write_firing(store, kiln, "F-1", t1)  # test-hv
    t2 = NOW_NS - 20 * H
    write_firing(store, kiln, "F-2", t2, send_programme=False)
    first = kiln_oee(client, tokens.engineer, t1 - 4 * H, t1 + 20 * H)
    assert first["produced"] == 1
    assert first["performance"] == pytest.approx(1.0, abs=0.01)  # nameplate: F-1's programme
    # This window's scan reaches back a day, to the middle of F-1.
    window = (t2 - 2 * H, NOW_NS - 2 * H)
    assert window[0] - 86400 * S > t1
    total = kiln_oee(client, tokens.engineer, *window)
    assert total["produced"] == 1
    assert total["performance"] == pytest.approx(1.0, abs=0.01)  # before the fix: 30 h / 11.4 h
    f1 = meta.firing(KILN, "F-1")
    assert (f1.start_ns, f1.end_ns, f1.programme) == (t1, t1 + DURATION_NS, "test-hv")
