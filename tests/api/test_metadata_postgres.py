"""The metadata store against a real PostgreSQL (and the same checks on SQLite)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, authenticate, issue_token
from api.metadata.store import FiringRow, GradingRow, MetadataStore
from api.settings import Settings
from tests.api.conftest import bearer


def _exercise(meta: MetadataStore) -> None:
    token, row = issue_token(meta, name="pg", role=Role.MANAGER, enterprise="dalian", now_ns=5)
    assert authenticate(meta, token).enterprise == "dalian"
    f = FiringRow(
        "dalian/p/l/kiln-1", "F-1", "dalian", "hv", "[]", 100, None, "running", None, None
    )
    meta.upsert_firing(f)
    meta.upsert_firing(
        FiringRow(
            "dalian/p/l/kiln-1", "F-1", "dalian", "hv", "[]", 100, 900, "complete", 0.97, 12.5
        )
    )
    meta.upsert_firing(
        FiringRow(
            "dalian/p/l/kiln-1", "F-1", "dalian", "hv", "[]", 100, 900, "complete", None, None
        )
    )  # a later scan keeps the score
    (got,) = meta.firings(enterprises=["dalian"], start_ns=0, end_ns=1000)
    assert (got.end_ns, got.state, got.conformance_score, got.energy_kwh) == (
        900,
        "complete",
        0.97,
        12.5,
    )
    assert meta.firings(enterprises=["fushun"]) == []
    # A scan of a window that began after the firing did and ended before it did: it saw a
    # running firing from the window's start, with no programme. Nothing recorded changes.
    meta.upsert_firing(
        FiringRow("dalian/p/l/kiln-1", "F-1", "dalian", "", "", 400, None, "running", None, None)
    )
    got = meta.firing("dalian/p/l/kiln-1", "F-1")
    assert (got.start_ns, got.end_ns, got.state, got.programme, got.conformance_score) == (
        100,
        900,
        "complete",
        "hv",
        0.97,
    )
    # A wider window shows an earlier start: taken, and the score judged without it dropped.
    meta.upsert_firing(
        FiringRow("dalian/p/l/kiln-1", "F-1", "dalian", "hv", "[]", 60, 900, "complete", None, None)
    )
    got = meta.firing("dalian/p/l/kiln-1", "F-1")
    assert (got.start_ns, got.end_ns, got.conformance_score) == (60, 900, None)
    meta.put_grading(
        GradingRow("dalian/p/l/kiln-1", "F-1", "dalian", 90, 10, {"crack": 10}, 1500.0, 950, "x")
    )
    meta.put_grading(
        GradingRow("dalian/p/l/kiln-1", "F-1", "dalian", 95, 5, {"crack": 5}, 1500.0, 960, "x")
    )
    (g,) = meta.gradings(asset="dalian/p/l/kiln-1")
    assert (g.good_count, g.reject_reasons) == (95, {"crack": 5})
    a = meta.add_assessment(
        "dalian", 10, "m", {"personnel": 2, "technology": 3}, "n'; DROP TABLE x"
    )
    assert meta.assessments("dalian")[0].note == "n'; DROP TABLE x" and a.id >= 1
    first = meta.raise_alarm(
        enterprise="dalian",
        asset="dalian/p/l/kiln-1",
        kind="silent",
        subject="",
        severity="warning",
        message="m",
        now_ns=1,
    )
    again = meta.raise_alarm(
        enterprise="dalian",
        asset="dalian/p/l/kiln-1",
        kind="silent",
        subject="",
        severity="warning",
        message="m2",
        now_ns=2,
    )
    assert first.id == again.id and again.last_ns == 2 and again.message == "m2"
    assert meta.ack_alarm(first.id, "eng", 3).acked_ns == 3
    assert meta.clear_alarms("dalian/p/l/kiln-1", set(), 4) == 1
    # The same condition later is a new alarm (the ended one keeps its history).
    third = meta.raise_alarm(
        enterprise="dalian",
        asset="dalian/p/l/kiln-1",
        kind="silent",
        subject="",
        severity="warning",
        message="m3",
        now_ns=5,
    )
    assert third.id != first.id and len(meta.alarms(enterprises=["dalian"])) == 2
    assert [x.id for x in meta.alarms(active_only=True)] == [third.id]
    assert meta.revoke_token(row.id) and authenticate(meta, token) is None


@pytest.mark.integration
def test_metadata_store_on_postgresql(postgres):
    meta = MetadataStore.open(postgres)
    try:
        _exercise(meta)
    finally:
        meta.close()


def test_metadata_store_on_sqlite(tmp_path):
    meta = MetadataStore.open(f"sqlite:///{tmp_path}/m.db")
    try:
        _exercise(meta)
    finally:
        meta.close()


@pytest.mark.integration
def test_api_runs_on_postgresql_metadata(postgres, store, plant, clock):
    meta = MetadataStore.open(postgres)
    try:
        token, _ = issue_token(meta, name="a", role=Role.ADMIN, enterprise=None, now_ns=1)
        app = create_app(
            Settings(alarm_interval_s=0), store=store, meta=meta, plant=plant, clock=clock
        )
        with TestClient(app) as c:
            h = bearer(token)
            assert c.post("/api/v1/alarms/evaluate", headers=h).json()["conditions_holding"] == 20
            assert len(c.get("/api/v1/alarms", headers=h, params={"limit": 1000}).json()) == 20
            r = c.post(
                "/api/v1/enterprises/dalian/digitalisation/assessments",
                headers=h,
                json={"personnel": 2, "technology": 2, "resources": 3, "manufacturing": 3},
            )
            assert r.status_code == 201
    finally:
        meta.close()
