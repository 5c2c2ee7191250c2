"""Schemathesis fuzzes every operation of the OpenAPI spec in-process (ASGI): no 5xx, and
every 4xx is a problem-details body. Bounded examples keep it well under a minute."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.auth import Role, issue_token
from api.metadata.store import MetadataStore
from api.settings import Settings
from core.plant import load_plant
from ingest.store_sqlite import SQLiteStore
from tests.api.conftest import NOW_NS, FakeClock
from tests.api.factory import S, write_firing, write_press_shift


def _build():
    plant = load_plant()
    store = SQLiteStore(":memory:")
    write_firing(
        store,
        plant.asset("dalian/plant-1/firing-shop/kiln-1"),
        "F-1",
        NOW_NS - 20 * 3600 * S,
        sample_s=300,
    )
    write_press_shift(
        store, plant.asset("dalian/plant-1/forming-shop/press-1"), NOW_NS - 8 * 3600 * S, 8.0
    )
    meta = MetadataStore.open(f"sqlite:///{tempfile.mkdtemp(prefix='kw-fuzz-')}/meta.db")
    token, _ = issue_token(meta, name="fuzz", role=Role.ADMIN, enterprise=None, now_ns=1)
    app = create_app(
        Settings(alarm_interval_s=0), store=store, meta=meta, plant=plant, clock=FakeClock()
    )
    return app, token


APP, TOKEN = _build()
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error])
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"][0].startswith("application/problem+json"), (
            f"{case.method} {case.formatted_path}: {response.status_code} without problem details"
        )
