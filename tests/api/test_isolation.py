"""Every endpoint x every role: who may see and write what.

The endpoints are enumerated from the app itself (its OpenAPI operations, cross-checked against
the routers), and every one must have a rule here: a new endpoint without a rule fails this
test, so nothing can escape the isolation check by being new.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from api import routes
from api.services.alarms import evaluate_alarms
from tests.api.conftest import NOW_NS, bearer
from tests.api.factory import S, write_firing

ADMIN, MANAGER, ENGINEER, OTHER, TOWN, ANON = (
    "admin",
    "manager",
    "engineer",
    "other_engineer",
    "town",
    "anonymous",
)
EVERYONE = {ADMIN, MANAGER, ENGINEER, OTHER, TOWN}
DALIAN_RAW = {ADMIN, MANAGER, ENGINEER}  # who may see Dalian's raw data

# (method, path) -> roles allowed when the request targets Dalian (the others get 403/404).
RULES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/health"): EVERYONE | {ANON},
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/metrics"): {ADMIN},
    ("POST", "/api/v1/tokens"): {ADMIN},
    ("GET", "/api/v1/tokens"): {ADMIN},
    ("DELETE", "/api/v1/tokens/{token_id}"): {ADMIN},
    ("GET", "/api/v1/plant"): EVERYONE,  # filtered by role (checked below)
    ("GET", "/api/v1/plant/{enterprise}"): DALIAN_RAW | {TOWN},  # town: no equipment list
    ("GET", "/api/v1/assets/{enterprise}/{site}/{line}/{asset}/latest"): DALIAN_RAW,
    ("GET", "/api/v1/assets/{enterprise}/{site}/{line}/{asset}/series"): DALIAN_RAW,
    ("GET", "/api/v1/assets/{enterprise}/{site}/{line}/{asset}/states"): DALIAN_RAW,
    ("GET", "/api/v1/kilns/{enterprise}/{site}/{line}/{asset}/firings"): DALIAN_RAW,
    ("GET", "/api/v1/kilns/{enterprise}/{site}/{line}/{asset}/firings/{firing_id}"): DALIAN_RAW,
    (
        "GET",
        "/api/v1/kilns/{enterprise}/{site}/{line}/{asset}/firings/{firing_id}/events",
    ): DALIAN_RAW,
    (
        "GET",
        "/api/v1/kilns/{enterprise}/{site}/{line}/{asset}/firings/{firing_id}/curve",
    ): DALIAN_RAW,
    (
        "POST",
        "/api/v1/kilns/{enterprise}/{site}/{line}/{asset}/firings/{firing_id}/grading",
    ): DALIAN_RAW,
    ("GET", "/api/v1/oee"): DALIAN_RAW,  # asked for a Dalian line (see TOWN_OEE for the town)
    ("GET", "/api/v1/enterprises/{enterprise}/digitalisation"): DALIAN_RAW | {TOWN},
    ("POST", "/api/v1/enterprises/{enterprise}/digitalisation/assessments"): {ADMIN, MANAGER},
    ("GET", "/api/v1/town/overview"): {ADMIN, TOWN},
    ("GET", "/api/v1/alarms"): DALIAN_RAW | {OTHER},  # filtered to the caller's enterprise
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): DALIAN_RAW,
    ("POST", "/api/v1/alarms/evaluate"): {ADMIN},
}

BODIES = {
    "/api/v1/tokens": {"name": "x", "role": "engineer", "enterprise": "dalian"},
    "/grading": {"good_count": 9, "reject_count": 1},
    "/assessments": {"personnel": 2, "technology": 2, "resources": 2, "manufacturing": 2},
}
QUERIES = {
    "/series": {"field": "zone1_tc1_temperature_c"},
    "/api/v1/oee": {"scope": "dalian/plant-1/forming-shop", "bucket": "window"},
}


def operations(app) -> set[tuple[str, str]]:
    ops = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    routed = {
        (m, "/api/v1" + r.path)
        for module in routes.API_MODULES
        for r in module.router.routes
        if isinstance(r, APIRoute)
        for m in r.methods
    }
    assert ops == routed, "every API route must be in the OpenAPI spec"
    return ops


def test_every_endpoint_has_a_rule(app):
    missing = operations(app) - set(RULES)
    assert not missing, f"endpoints without an isolation rule: {sorted(missing)}"


@pytest.fixture
def world(app, client, tokens, store, plant, meta):
    kiln = plant.asset("dalian/plant-1/firing-shop/kiln-1")
    write_firing(store, kiln, "F-1", NOW_NS - 20 * 3600 * S)
    evaluate_alarms(app.state.ctx)  # raises "never reported" alarms for every asset
    alarm = next(a for a in meta.alarms(enterprises=["dalian"]))
    return {"alarm_id": alarm.id}


def _fill(path: str, world: dict, meta, tokens) -> str:
    victim = meta.tokens()[-1].id  # a token id (revoking it is harmless here)
    return (
        path.replace("{enterprise}", "dalian")
        .replace("{site}", "plant-1")
        .replace("{line}", "firing-shop")
        .replace("{asset}", "kiln-1")
        .replace("{firing_id}", "F-1")
        .replace("{alarm_id}", str(world["alarm_id"]))
        .replace("{token_id}", victim)
    )


def _call(client, method: str, path: str, url: str, token: str | None):
    headers = bearer(token) if token else {}
    body = next((b for k, b in BODIES.items() if path.endswith(k)), None)
    params = next((q for k, q in QUERIES.items() if path.endswith(k)), None)
    return client.request(method, url, headers=headers, json=body, params=params)


def test_every_endpoint_for_every_role(app, client, tokens, meta, world):
    by_role = {**tokens.by_role(), ANON: None}
    failures = []
    # DELETE /tokens last: it revokes a token.
    for method, path in sorted(operations(app), key=lambda op: op[0] == "DELETE"):
        for role, token in by_role.items():
            url = _fill(path, world, meta, tokens)
            r = _call(client, method, path, url, token)
            allowed = role in RULES[(method, path)]
            if r.status_code >= 500:
                failures.append(f"{role} {method} {path}: {r.status_code}")
            elif allowed and r.status_code in (401, 403, 404):
                failures.append(f"{role} {method} {path}: refused {r.status_code} {r.text[:120]}")
            elif not allowed and r.status_code not in ((401,) if role == ANON else (403, 404)):
                failures.append(f"{role} {method} {path}: not refused ({r.status_code})")
            elif not allowed and r.headers["content-type"] != "application/problem+json":
                failures.append(f"{role} {method} {path}: refusal is not problem+json")
            elif allowed and role == OTHER and "dalian" in r.text:
                failures.append(f"{role} {method} {path}: Dalian data leaked to Fushun")
    assert not failures, "\n".join(failures)


def test_town_official_gets_aggregates_of_key_enterprises_only(client, tokens):
    h = bearer(tokens.town)
    assert client.get("/api/v1/oee", headers=h, params={"scope": ""}).status_code == 200
    assert client.get("/api/v1/oee", headers=h, params={"scope": "dalian"}).status_code == 200
    for scope in (
        "dalian/plant-1",
        "dalian/plant-1/firing-shop",
        "dalian/plant-1/firing-shop/kiln-1",
    ):
        assert client.get("/api/v1/oee", headers=h, params={"scope": scope}).status_code == 403
    # An enterprise engineer sees neither the town nor another enterprise.
    e = bearer(tokens.engineer)
    assert client.get("/api/v1/oee", headers=e, params={"scope": ""}).status_code == 403
    assert client.get("/api/v1/oee", headers=e, params={"scope": "fushun"}).status_code == 403
    assert client.get("/api/v1/oee", headers=e, params={"scope": "dalian"}).status_code == 200


def test_town_official_cannot_see_a_non_key_enterprise(tmp_path, settings, store, meta, clock):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import Role, issue_token
    from core.plant import parse_plant

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
      ideal_cycle_time_s = 60.0
[[enterprise]]
id = "small"
key = false
  [[enterprise.site]]
  id = "s"
    [[enterprise.site.line]]
    id = "l"
""")
    app = create_app(settings, store=store, meta=meta, plant=plant, clock=clock)
    token, _ = issue_token(meta, name="town", role=Role.TOWN, enterprise=None, now_ns=1)
    with TestClient(app) as c:
        h = bearer(token)
        assert [e["id"] for e in c.get("/api/v1/plant", headers=h).json()["enterprises"]] == ["big"]
        assert c.get("/api/v1/plant/small", headers=h).status_code == 403
        assert c.get("/api/v1/oee", headers=h, params={"scope": "small"}).status_code == 403
        assert c.get("/api/v1/enterprises/small/digitalisation", headers=h).status_code == 403
        overview = c.get("/api/v1/town/overview", headers=h).json()
        assert [e["enterprise"] for e in overview["enterprises"]] == ["big"]
