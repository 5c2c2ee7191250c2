"""The dashboard in a real headless Chromium (Debian's, driven by playwright; no download):
pages load, charts draw data from the API, login works. Screenshots go to test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from api.auth import Role, issue_token
from api.metadata.store import MetadataStore
from api.settings import Settings
from core.plant import load_plant
from core.reading import now_ns
from ingest.store_sqlite import SQLiteStore
from tests.api.factory import S, write_firing, write_press_shift
from tests.servers import free_port, port_open, wait_until

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KILN = "dalian/plant-1/firing-shop/kiln-1"


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    plant = load_plant()
    store = SQLiteStore(":memory:")
    now = now_ns()
    kiln = plant.asset(KILN)
    prog = write_firing(
        store, kiln, "F-0412", now - 30 * 3600 * S, sample_s=120, hot_zone=(3, 25.0)
    )
    write_firing(store, kiln, "F-0413", now - 6 * 3600 * S, sample_s=120, until_ns=now - 5 * S)
    assert prog.duration_s < 24 * 3600
    for press, bd in (("press-1", 1.5), ("press-2", 0.5)):
        write_press_shift(
            store,
            plant.asset(f"dalian/plant-1/forming-shop/{press}"),
            now - 20 * 3600 * S,
            20.0,
            breakdown_h=bd,
        )
    meta = MetadataStore.open(f"sqlite:///{tmp_path}/meta.db")
    tokens = {
        "engineer": issue_token(
            meta, name="Li Wei", role=Role.ENGINEER, enterprise="dalian", now_ns=now
        )[0],
        "town": issue_token(meta, name="Town office", role=Role.TOWN, enterprise=None, now_ns=now)[
            0
        ],
    }
    app = create_app(Settings(alarm_interval_s=0), store=store, meta=meta, plant=plant)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: port_open(port), 20, "the API to listen")
    try:
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        srv.should_exit = True
        thread.join(10)
        meta.close()
        store.close()


def _chart_points(page, selector: str) -> int:
    """How many numeric y values the Plotly chart at ``selector`` holds."""
    return page.evaluate(
        """sel => (document.querySelector(sel).data || []).reduce((n, t) =>
             n + (t.y || []).filter(v => typeof v === 'number').length, 0)""",
        selector,
    )


def _wait_traces(page, selector: str, at_least: int) -> None:
    """Wait until the Plotly chart at ``selector`` has ``at_least`` traces. Polls with
    ``evaluate`` (a CDP function call), not ``wait_for_function``, whose string predicate is an
    eval the dashboard's Content-Security-Policy rightly forbids."""
    count = "sel => document.querySelector(sel)?.data?.length || 0"
    wait_until(lambda: page.evaluate(count, selector) >= at_least, 20, f"{selector} traces")


def test_dashboard_in_chromium(server):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/test does)")
    base, tokens = server
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            # CSP violations and failed loads are console errors, not page errors.
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.set_default_timeout(20_000)
            page.goto(base + "/")
            page.wait_for_url("**/#/login")
            page.fill("#token", "kw_000000000000_wrong")
            page.click("button[type=submit]")
            page.wait_for_selector("#login-error:has-text('not valid')")
            errors.clear()  # the refused /me is logged as a failed (401) resource load
            page.fill("#token", tokens["engineer"])
            page.click("button[type=submit]")
            page.wait_for_selector("h1:has-text('Plant')")
            page.wait_for_selector("text=Li Wei")
            assert page.locator("text=connected").count() > 0

            page.goto(f"{base}/#/kiln/{KILN}")
            _wait_traces(page, "#curve", 3)
            _wait_traces(page, "#zones", 1)
            assert _chart_points(page, "#zones") == 8 + 4  # each thermocouple and zone setpoint
            assert _chart_points(page, "#curve") > 100  # setpoint, band and 8 thermocouples
            page.wait_for_selector("a:has-text('F-0412')")
            page.screenshot(path=str(ARTIFACTS / "dashboard-kiln.png"), full_page=True)

            page.click("a:has-text('F-0412')")
            page.wait_for_selector("#verdict")
            _wait_traces(page, "#curve", 3)
            assert "nonconforming" in page.inner_text("#verdict")  # zone 3 ran 25 °C hot
            assert page.locator("td:has-text('zone3_tc1')").count() >= 1
            page.fill("input[name=good]", "180")
            page.fill("input[name=reject]", "6")
            page.fill("input[name=reasons]", "crack=4, black_core=2")
            page.click("#grade button")
            page.wait_for_selector("#grading:has-text('180 good')")
            page.screenshot(path=str(ARTIFACTS / "dashboard-firing.png"), full_page=True)

            page.goto(f"{base}/#/line/dalian/plant-1/forming-shop")
            _wait_traces(page, "#oee", 7)
            _wait_traces(page, "#states", 2)
            assert _chart_points(page, "#oee") > 0
            page.screenshot(path=str(ARTIFACTS / "dashboard-line.png"), full_page=True)

            page.goto(f"{base}/#/enterprise/dalian")
            _wait_traces(page, "#progress", 1)
            assert _chart_points(page, "#indicators") > 0

            page.goto(f"{base}/#/login")
            page.fill("#token", tokens["town"])
            page.click("button[type=submit]")
            page.wait_for_url("**/#/town")
            _wait_traces(page, "#side", 4)
            page.wait_for_selector("#who:has-text('Town office')")
            assert page.locator("td a").count() == 5  # the five key enterprises side by side
            page.screenshot(path=str(ARTIFACTS / "dashboard-town.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
