"""Tokens: hashed at rest, constant-time check, revocation, and 401 problem details."""

from __future__ import annotations

import hashlib

from api.auth import Role, authenticate, issue_token
from tests.api.conftest import bearer


def test_token_is_stored_only_as_its_hash(meta):
    token, row = issue_token(meta, name="t", role=Role.ADMIN, enterprise=None, now_ns=1)
    secret = token.split("_", 2)[2]
    stored = meta.token(row.id)
    assert stored.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(meta.tokens())
    assert authenticate(meta, token).role is Role.ADMIN


def test_wrong_malformed_and_revoked_tokens_are_refused(meta):
    token, row = issue_token(meta, name="t", role=Role.ENGINEER, enterprise="dalian", now_ns=1)
    assert authenticate(meta, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert authenticate(meta, "kw_nothex_abc") is None
    assert authenticate(meta, "") is None
    assert authenticate(meta, "kw_" + row.id) is None
    meta.revoke_token(row.id)
    assert authenticate(meta, token) is None


def test_missing_token_is_401_problem(client):
    r = client.get("/api/v1/plant")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_admin_creates_lists_and_revokes_tokens(client, tokens):
    r = client.post(
        "/api/v1/tokens",
        headers=bearer(tokens.admin),
        json={"name": "bench", "role": "engineer", "enterprise": "dalian"},
    )
    assert r.status_code == 201, r.text
    new = r.json()
    me = client.get("/api/v1/me", headers=bearer(new["token"])).json()
    assert me == {
        "token_id": new["id"],
        "name": "bench",
        "role": "engineer",
        "enterprise": "dalian",
    }
    listed = client.get("/api/v1/tokens", headers=bearer(tokens.admin)).json()
    assert new["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    assert (
        client.delete(f"/api/v1/tokens/{new['id']}", headers=bearer(tokens.admin)).status_code
        == 204
    )
    assert client.get("/api/v1/me", headers=bearer(new["token"])).status_code == 401


def test_token_for_unknown_enterprise_is_422(client, tokens):
    r = client.post(
        "/api/v1/tokens",
        headers=bearer(tokens.admin),
        json={"name": "x", "role": "manager", "enterprise": "nowhere"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post(
        "/api/v1/tokens",
        headers=bearer(tokens.admin),
        json={"name": "x", "role": "town", "enterprise": "dalian"},
    )
    assert r.status_code == 422
