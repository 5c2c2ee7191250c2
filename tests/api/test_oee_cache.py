"""The OEE cache: repeated requests are not recomputed, and a cached answer is never wrong.

The store is the real embedded SQLite store behind a wrapper that counts reads (the only fake,
at the Store seam): "served from the cache" means "the store was not read". The clock is the
app's injectable one, so expiry is tested without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_token
from api.metadata.store import FiringRow, GradingRow, MetadataStore
from api.services.oee_cache import OeeCache
from api.settings import Settings
from core.plant import parse_plant
from tests.api.conftest import NOW_NS, Tokens, bearer
from tests.api.factory import S, put, write_firing, write_press_shift

LINE = "dalian/plant-1/forming-shop"
PRESS = f"{LINE}/press-1"
PRESS_2 = f"{LINE}/press-2"
KILN = "dalian/plant-1/firing-shop/kiln-1"
SHIFT_A = NOW_NS - 86400 * S  # 2025-11-25 08:00 Asia/Shanghai
H = 3600 * S


class CountingStore:
    """The real store, counting the reads the OEE service makes (series, latest)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.reads = 0
        self._lock = threading.Lock()

    def series(self, *args, **kwargs):
        with self._lock:
            self.reads += 1
        return self.inner.series(*args, **kwargs)

    def latest(self, *args, **kwargs):
        with self._lock:
            self.reads += 1
        return self.inner.latest(*args, **kwargs)

    def __getattr__(self, name: str):  # write, list_series, close...: straight through
        return getattr(self.inner, name)


@pytest.fixture
def counting(store) -> CountingStore:
    return CountingStore(store)


@pytest.fixture
def client(settings, counting, meta, plant, clock) -> Iterator[TestClient]:
    app = create_app(settings, store=counting, meta=meta, plant=plant, clock=clock)
    with TestClient(app) as c:
        yield c


def oee(client: TestClient, token: str, **params) -> dict:
    r = client.get("/api/v1/oee", headers=bearer(token), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def two_presses(store, plant) -> None:
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=1.0)
    write_press_shift(store, plant.asset(PRESS_2), SHIFT_A, 8.0, breakdown_h=3.0)


def cache_lookups(client: TestClient, tokens: Tokens) -> dict[str, float]:
    text = client.get("/api/v1/metrics", headers=bearer(tokens.admin)).text
    out = {}
    for line in text.splitlines():
        if line.startswith("kilnworks_api_oee_cache_lookups_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            out[result] = float(line.rsplit(" ", 1)[1])
    return out


def test_a_repeated_request_does_not_read_the_store(client, tokens, store, counting, plant):
    two_presses(store, plant)
    params = {"scope": LINE, "bucket": "shift", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    first = oee(client, tokens.engineer, **params)
    assert counting.reads > 0
    reads = counting.reads
    second = oee(client, tokens.engineer, **params)
    assert counting.reads == reads, "the second request read the store"
    assert second == first
    assert first["total"]["availability"] == pytest.approx((7 + 5) / 16, abs=0.01)
    # The same assets and window asked through another scope share the entries.
    oee(
        client,
        tokens.engineer,
        scope=PRESS,
        bucket="shift",
        start_ns=SHIFT_A,
        end_ns=SHIFT_A + 8 * H,
    )
    assert counting.reads == reads
    # Another bucket is another result.
    oee(client, tokens.engineer, scope=LINE, bucket="day", start_ns=SHIFT_A, end_ns=SHIFT_A + 8 * H)
    assert counting.reads > reads
    assert cache_lookups(client, tokens) == {"hit": 3.0, "miss": 4.0, "wait": 0.0}


def test_the_default_window_ends_on_a_step_so_pollers_share_it(
    client, tokens, store, counting, plant, clock
):
    two_presses(store, plant)
    clock.now_ns = NOW_NS + 1 * S  # NOW_NS is a multiple of the 5 s step
    first = oee(client, tokens.engineer, scope=LINE, bucket="shift")
    assert first["end_ns"] == NOW_NS and first["start_ns"] == NOW_NS - 24 * H
    reads = counting.reads
    clock.now_ns = NOW_NS + 4 * S
    assert oee(client, tokens.engineer, scope=LINE, bucket="shift") == first
    assert counting.reads == reads
    clock.now_ns = NOW_NS + 5 * S  # the next step: a new window, computed
    assert oee(client, tokens.engineer, scope=LINE, bucket="shift")["end_ns"] == NOW_NS + 5 * S
    assert counting.reads > reads


def test_a_window_including_now_expires_after_the_ttl(
    client, tokens, store, counting, plant, clock
):
    press = plant.asset(PRESS)
    write_press_shift(store, press, NOW_NS - 8 * H, 8.0, breakdown_h=0.0)
    # A window that has not ended yet: live, kept oee_cache_live_s (5 s).
    params = {"scope": PRESS, "bucket": "window", "start_ns": NOW_NS - 8 * H, "end_ns": NOW_NS + H}
    before = oee(client, tokens.engineer, **params)["total"]
    reads = counting.reads
    # Late data: the last two hours were a breakdown.
    put(store, PRESS, "state", [NOW_NS - 2 * H], ["breakdown"])
    clock.now_ns = NOW_NS + 4 * S
    assert oee(client, tokens.engineer, **params)["total"] == before  # within the TTL
    assert counting.reads == reads
    clock.now_ns = NOW_NS + 5 * S
    after = oee(client, tokens.engineer, **params)["total"]
    assert counting.reads > reads
    assert after["availability"] < before["availability"]
    lost = after["losses_s"]["equipment_failure_s"] - before["losses_s"]["equipment_failure_s"]
    assert lost >= 2 * 3600


def test_a_window_ended_within_the_late_allowance_is_still_live(
    client, tokens, store, counting, plant, clock
):
    write_press_shift(store, plant.asset(PRESS), NOW_NS - 8 * H, 8.0, breakdown_h=0.0)
    params = {"scope": PRESS, "bucket": "window", "start_ns": NOW_NS - 8 * H, "end_ns": NOW_NS}
    clock.now_ns = NOW_NS + 60 * S  # ended a minute ago; oee_cache_late_s is 600 s
    oee(client, tokens.engineer, **params)
    reads = counting.reads
    clock.now_ns = NOW_NS + 65 * S
    oee(client, tokens.engineer, **params)
    assert counting.reads > reads


def test_a_settled_window_is_kept_until_its_max_age(client, tokens, store, counting, plant, clock):
    two_presses(store, plant)
    params = {"scope": LINE, "bucket": "window", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    oee(client, tokens.engineer, **params)
    reads = counting.reads
    clock.now_ns = NOW_NS + 3599 * S  # oee_cache_settled_s is 3600 s
    oee(client, tokens.engineer, **params)
    assert counting.reads == reads
    clock.now_ns = NOW_NS + 3600 * S
    oee(client, tokens.engineer, **params)
    assert counting.reads > reads


def test_a_grading_post_changes_the_cached_kiln_oee(client, tokens, store, counting, plant):
    write_firing(store, plant.asset(KILN), "F-1", NOW_NS - 20 * H)  # ends ~11.5 h later
    # Entirely in the past and the firing complete: settled, kept until invalidated.
    params = {"scope": KILN, "bucket": "window", "start_ns": NOW_NS - 24 * H, "end_ns": NOW_NS - H}
    before = oee(client, tokens.engineer, **params)["total"]
    assert before["produced"] == 1 and before["quality"] is None
    # That first computation recorded the firing, which drops the kiln's results (its own
    # included: it cannot tell its own write from another's); the next one is kept.
    assert oee(client, tokens.engineer, **params)["total"] == before
    reads = counting.reads
    assert oee(client, tokens.engineer, **params)["total"] == before
    assert counting.reads == reads
    r = client.post(
        f"/api/v1/kilns/{KILN}/firings/F-1/grading",
        headers=bearer(tokens.engineer),
        json={"good_count": 90, "reject_count": 10},
    )
    assert r.status_code == 200, r.text
    after = oee(client, tokens.engineer, **params)["total"]
    assert after["quality"] == pytest.approx(0.9)
    assert after["oee"] is not None
    # A re-grade replaces the grading, and the answer with it.
    client.post(
        f"/api/v1/kilns/{KILN}/firings/F-1/grading",
        headers=bearer(tokens.engineer),
        json={"good_count": 50, "reject_count": 50},
    )
    assert oee(client, tokens.engineer, **params)["total"]["quality"] == pytest.approx(0.5)


def test_the_town_overview_takes_a_grading_at_once(client, tokens, store, plant):
    write_firing(store, plant.asset(KILN), "F-T", NOW_NS - 20 * H)
    town = bearer(tokens.town)
    before = client.get("/api/v1/town/overview", headers=town).json()
    dalian = next(e for e in before["enterprises"] if e["enterprise"] == "dalian")
    assert dalian["quality"] is None
    client.post(
        f"/api/v1/kilns/{KILN}/firings/F-T/grading",
        headers=bearer(tokens.engineer),
        json={"good_count": 80, "reject_count": 20},
    )
    after = client.get("/api/v1/town/overview", headers=town).json()  # same instant
    dalian = next(e for e in after["enterprises"] if e["enterprise"] == "dalian")
    assert dalian["quality"] == pytest.approx(0.8)


def test_one_enterprises_cached_result_never_answers_another(client, tokens, store, plant):
    # Same site/line/asset ids in both enterprises, different data.
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=1.0)
    other = PRESS.replace("dalian/", "fushun/")
    write_press_shift(store, plant.asset(other), SHIFT_A, 8.0, breakdown_h=4.0)
    window = {"bucket": "shift", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    dalian = oee(client, tokens.engineer, scope=PRESS, **window)
    assert dalian["total"]["availability"] == pytest.approx(7 / 8, abs=0.01)
    # Fushun's engineer asking for Dalian's (cached) press is refused before the cache.
    r = client.get(
        "/api/v1/oee", headers=bearer(tokens.other_engineer), params={"scope": PRESS, **window}
    )
    assert r.status_code == 403 and "availability" not in r.text
    for scope in ("dalian", "dalian/plant-1", LINE, ""):
        r = client.get(
            "/api/v1/oee", headers=bearer(tokens.other_engineer), params={"scope": scope, **window}
        )
        assert r.status_code == 403, scope
    # Its own press, at the same relative path and window, is its own data.
    fushun = oee(client, tokens.other_engineer, scope=other, **window)
    assert fushun["total"]["availability"] == pytest.approx(4 / 8, abs=0.01)
    assert "dalian" not in str(fushun)
    # The town official sees both as aggregates, each with its own figure.
    town = {
        e: oee(client, tokens.town, scope=e, **window)["total"]["availability"]
        for e in ("dalian", "fushun")
    }
    assert town["dalian"] != town["fushun"]


def test_a_non_key_enterprise_stays_hidden_when_cached(tmp_path, settings, store, meta, clock):
    plant = parse_plant("""
[[enterprise]]
id = "big"
key = true
  [[enterprise.site]]
  id = "s"
    [[enterprise.site.line]]
    id = "l"
      [[enterprise.site.line.asset]]
      id = "p"
      type = "press"
      kind = "isostatic"
      ideal_cycle_time_s = 90.0
[[enterprise]]
id = "small"
key = false
  [[enterprise.site]]
  id = "s"
    [[enterprise.site.line]]
    id = "l"
      [[enterprise.site.line.asset]]
      id = "p"
      type = "press"
      kind = "isostatic"
      ideal_cycle_time_s = 90.0
""")
    write_press_shift(store, plant.asset("big/s/l/p"), SHIFT_A, 8.0, breakdown_h=0.0)
    write_press_shift(store, plant.asset("small/s/l/p"), SHIFT_A, 8.0, breakdown_h=4.0)
    app = create_app(settings, store=store, meta=meta, plant=plant, clock=clock)
    admin, _ = issue_token(meta, name="a", role=Role.ADMIN, enterprise=None, now_ns=1)
    town, _ = issue_token(meta, name="t", role=Role.TOWN, enterprise=None, now_ns=1)
    window = {"bucket": "window", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    with TestClient(app) as c:
        small = c.get("/api/v1/oee", headers=bearer(admin), params={"scope": "small", **window})
        assert small.json()["total"]["availability"] == pytest.approx(0.5, abs=0.01)
        r = c.get("/api/v1/oee", headers=bearer(town), params={"scope": "small", **window})
        assert r.status_code == 403
        whole = c.get("/api/v1/oee", headers=bearer(town), params={"scope": "", **window}).json()
        assert whole["total"]["availability"] == pytest.approx(1.0, abs=0.01)  # big only


def test_cached_reason_codes_are_the_scopes_own(
    client, tokens, store, plant, settings, meta, clock
):
    """Each asset's reason codes are its own; a scope built partly from cached results must
    name every reason as a computation from scratch does."""
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=1.0)  # "hydraulic leak"
    mid = SHIFT_A + 2 * H
    put(store, PRESS_2, "state", [SHIFT_A, mid, mid + H], ["running", "setup", "running"])
    put(store, PRESS_2, "state_reason", [SHIFT_A, mid, mid + H], ["", "die change", ""])
    window = {"bucket": "shift", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    oee(client, tokens.engineer, scope=PRESS_2, **window)  # press-2 cached with its code 1
    cached = oee(client, tokens.engineer, scope=LINE, **window)
    uncached_app = create_app(
        Settings(alarm_interval_s=0, oee_cache_entries=0),
        store=store,
        meta=meta,
        plant=plant,
        clock=clock,
    )
    with TestClient(uncached_app) as c:
        r = c.get("/api/v1/oee", headers=bearer(tokens.engineer), params={"scope": LINE, **window})
    assert cached == r.json()
    reasons = cached["total"]["downtime_by_reason_s"]
    assert reasons["hydraulic leak"] == pytest.approx(3600, abs=120)
    assert reasons["die change"] == pytest.approx(3600, abs=120)


def test_an_edited_shift_calendar_is_a_new_key(tmp_path, store, meta, plant, clock, tokens):
    shifts = tmp_path / "shifts.toml"
    day = '[[shift]]\nname = "D"\nstart = "08:00"\nend = "16:00"\n'
    shifts.write_text('timezone = "Asia/Shanghai"\n' + day)
    settings = Settings(alarm_interval_s=0, shifts_path=str(shifts))
    app = create_app(settings, store=store, meta=meta, plant=plant, clock=clock)
    write_press_shift(store, plant.asset(PRESS), SHIFT_A, 8.0, breakdown_h=1.0)
    window = {"scope": PRESS, "bucket": "shift", "start_ns": SHIFT_A, "end_ns": SHIFT_A + 8 * H}
    with TestClient(app) as c:
        assert [p["period"] for p in oee(c, tokens.engineer, **window)["periods"]] == [
            "2025-11-25/D"
        ]
        shifts.write_text('timezone = "Asia/Shanghai"\n' + day.replace('"D"', '"Day"'))
        assert [p["period"] for p in oee(c, tokens.engineer, **window)["periods"]] == [
            "2025-11-25/Day"
        ]


# -- the cache and the metadata store on their own -------------------------------------------


def test_concurrent_misses_compute_once() -> None:
    cache: OeeCache[int] = OeeCache(
        lambda: NOW_NS, max_entries=10, live_s=5, late_s=600, settled_s=0
    )
    started, release = threading.Event(), threading.Event()
    calls = []

    def compute(now_ns: int) -> tuple[int, bool]:
        calls.append(now_ns)
        started.set()
        release.wait(5)
        return 42, True

    results = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_compute("a", 1, compute)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(cache.get_or_compute("a", 1, compute)))
    second.start()
    while cache.stats().waits == 0:
        threading.Event().wait(0.001)
    release.set()
    first.join(5), second.join(5)
    assert results == [42, 42] and len(calls) == 1
    assert cache.stats().misses == 1 and cache.stats().waits == 1


def test_a_result_computed_across_an_invalidation_is_not_kept() -> None:
    cache: OeeCache[str] = OeeCache(
        lambda: NOW_NS, max_entries=10, live_s=5, late_s=600, settled_s=0
    )

    def stale(now_ns: int) -> tuple[str, bool]:
        cache.invalidate("a")  # a grading lands while the old one is being read
        return "old", True

    assert cache.get_or_compute("a", 1, stale) == "old"
    assert cache.get_or_compute("a", 1, lambda now: ("new", True)) == "new"
    assert cache.get_or_compute("a", 1, lambda now: ("newer", True)) == "new"  # kept


def test_least_recently_used_goes_first() -> None:
    cache: OeeCache[int] = OeeCache(lambda: NOW_NS, max_entries=2, live_s=5, late_s=0, settled_s=0)
    for k in (1, 2):
        cache.get_or_compute("a", k, lambda now, k=k: (k, True))
    cache.get_or_compute("a", 1, lambda now: (-1, True))  # hit: 1 is now the most recent
    cache.get_or_compute("a", 3, lambda now: (3, True))  # evicts 2
    assert cache.get_or_compute("a", 1, lambda now: (-1, True)) == 1
    assert cache.get_or_compute("a", 2, lambda now: (-2, True)) == -2
    assert cache.stats().evictions == 2 and cache.stats().entries == 2


def test_metadata_store_announces_only_changes_to_oee_inputs(meta: MetadataStore) -> None:
    heard: list[str] = []
    meta.add_listener(heard.append)
    row = FiringRow(KILN, "F-1", "dalian", "hv", "[]", 10, None, "running", None, None)
    meta.upsert_firing(row)
    meta.upsert_firing(row)  # a re-scan that found the same
    assert heard == [KILN]
    ended = FiringRow(KILN, "F-1", "dalian", "hv", "[]", 10, 99, "complete", None, None)
    meta.upsert_firing(ended)
    assert heard == [KILN, KILN]
    meta.upsert_firing(FiringRow(KILN, "F-1", "dalian", "hv", "[]", 10, 99, "complete", 0.9, 5.0))
    assert heard == [KILN, KILN]  # a score is not an OEE input
    # Scans of windows that began after the firing did, or ended before it did: they saw
    # only part of it, and change nothing.
    meta.upsert_firing(FiringRow(KILN, "F-1", "dalian", "", "", 20, 99, "complete", None, None))
    meta.upsert_firing(FiringRow(KILN, "F-1", "dalian", "", "", 20, None, "running", None, None))
    assert heard == [KILN, KILN]
    f = meta.firing(KILN, "F-1")
    assert (f.start_ns, f.end_ns, f.state, f.programme, f.conformance_score) == (
        10,
        99,
        "complete",
        "hv",
        0.9,
    )
    # A wider window shows an earlier start: learnt, announced, and the score (judged over
    # the part known before) is dropped.
    meta.upsert_firing(FiringRow(KILN, "F-1", "dalian", "hv", "[]", 5, 99, "complete", None, None))
    assert heard == [KILN, KILN, KILN]
    f = meta.firing(KILN, "F-1")
    assert (f.start_ns, f.end_ns, f.conformance_score, f.energy_kwh) == (5, 99, None, None)
    meta.put_grading(GradingRow(KILN, "F-1", "dalian", 9, 1, {}, None, 100, "t"))
    assert heard == [KILN, KILN, KILN, KILN]
    meta.remove_listener(heard.append)
    meta.put_grading(GradingRow(KILN, "F-1", "dalian", 8, 2, {}, None, 101, "t"))
    assert len(heard) == 4


def test_an_earlier_start_learnt_drops_the_kilns_settled_results(
    client, tokens, store, counting, plant, clock
):
    """OPC UA history gap-fill: after an outage the edge agent sends live data first and the
    missed hours later. The firing's recorded start moves earlier when a scan sees them, and
    OEE computed before (without those hours) must not be served from the cache."""
    s0 = NOW_NS - 30 * H  # F-1 started; the agent was down from s0 - 1 h to s0 + 6 h

    def firing(times) -> None:
        n = len(times)
        put(store, KILN, "firing_id", times, ["F-1"] * n)
        put(store, KILN, "state", times, ["heating"] * n)
        put(store, KILN, "programme", times, ["test-hv"] * n)  # sent with every sample

    put(store, KILN, "state", [s0 - 10 * H], ["idle"])
    firing(range(s0 + 6 * H, s0 + 6 * H + 30 * 60 * S, 60 * S))  # live since the restart
    clock.now_ns = s0 + 6 * H + 30 * 60 * S
    listed = client.get(f"/api/v1/kilns/{KILN}/firings", headers=bearer(tokens.engineer)).json()
    assert [(f["firing_id"], f["start_ns"]) for f in listed] == [("F-1", s0 + 6 * H)]
    window = {"scope": KILN, "bucket": "window", "start_ns": s0 - 4 * H, "end_ns": s0 + 4 * H}
    before = oee(client, tokens.engineer, **window)["total"]  # settled: ended 2.5 h ago
    assert before["availability"] == pytest.approx(0.0)
    reads = counting.reads
    assert oee(client, tokens.engineer, **window)["total"] == before
    assert counting.reads == reads
    firing(range(s0, s0 + 6 * H, 60 * S))  # the gap-fill
    listed = client.get(f"/api/v1/kilns/{KILN}/firings", headers=bearer(tokens.engineer)).json()
    assert [(f["firing_id"], f["start_ns"]) for f in listed] == [("F-1", s0)]
    after = oee(client, tokens.engineer, **window)["total"]
    assert after["availability"] == pytest.approx(0.5, abs=0.01)  # fired from s0 on
