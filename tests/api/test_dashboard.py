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


def test_metrics_count_requests_by_route_template(client, tokens):
    client.get(
        "/api/v1/assets/dalian/plant-1/firing-shop/kiln-1/latest",
        headers={"Authorization": f"Bearer {tokens.engineer}"},
    )
    client.get("/api/v1/plant")  # 401
    r = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {tokens.admin}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'kilnworks_api_requests_total{method="GET",'
        'route="/assets/{enterprise}/{site}/{line}/{asset}/latest",status="200"} 1.0'
    ) in text
    assert 'route="/plant",status="401"} 1.0' in text
    assert "kiln-1" not in text  # templates, never concrete ids, in labels
    assert (
        client.get(
            "/api/v1/metrics", headers={"Authorization": f"Bearer {tokens.engineer}"}
        ).status_code
        == 403
    )
