"""The dashboard's static serving: pages, plotly.js from the plotly package, security headers."""

from __future__ import annotations

from api.routes.dashboard import plotly_js


def test_index_and_modules_with_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and '<script type="module" src="/static/js/app.js">' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    for module in ("app", "api", "login", "plant", "kiln", "firing", "line", "enterprise", "town"):
        js = client.get(f"/static/js/{module}.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"], module


def test_plotly_comes_from_the_installed_package(client):
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.content == plotly_js().read_bytes()


def test_no_path_traversal_and_api_headers(client, tokens):
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404
    r = client.get("/api/v1/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in r.headers
