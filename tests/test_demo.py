"""`kilnworks demo` end to end, as a newcomer runs it: simulators -> agent -> store -> API.

The demo is started as a process, once with each broker it can start; the test reads the admin
token it prints, waits until the API shows live kiln temperatures (OPC UA path) and press
counters (MQTT path), then stops it with SIGTERM and checks that no child process is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, require_binary, wait_until

pytestmark = pytest.mark.integration

KILN = "xinghai/plant-1/firing-shop/kiln-1"
PRESS = "xinghai/plant-1/forming-shop/press-1"


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_brings_live_kilns_and_presses_to_the_api(tmp_path: Path, broker: str) -> None:
    """mosquitto when installed; amqtt (MQTT 3.1.1, pure Python) on a machine without it."""
    if broker == "mosquitto":
        require_binary("mosquitto", "mosquitto", ("/usr/sbin/mosquitto",))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "demo", "--dir", str(tmp_path / "demo"),
         "--port", str(port), "--speed", "1200", "--start=-6h", "--status-every", "0",
         "--broker", broker],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(proc.stdout or ()), daemon=True).start()
    try:
        wait_until(lambda: any("kw_" in line for line in output) or proc.poll() is not None,
                   90, "the demo to print its admin token")  # fmt: skip
        assert proc.poll() is None, "".join(output)
        token = re.search(r"(kw_\S+)", "".join(output)).group(1)  # type: ignore[union-attr]
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip

        def latest(asset: str) -> dict:
            r = api.get(f"/assets/{asset}/latest")
            return r.json() if r.status_code == 200 else {}

        def has(asset: str, field: str) -> bool:
            return field in latest(asset).get("fields", {})

        wait_until(lambda: has(KILN, "zone1_tc1_temperature_c"), 120, "kiln temperatures")
        wait_until(lambda: has(PRESS, "count_total"), 120, "press counters")
        kiln = latest(KILN)
        assert kiln["connected"] is True
        assert 0.0 < kiln["fields"]["zone1_tc1_temperature_c"]["value"] < 1450.0
        assert api.get("/plant").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, "".join(output)
    # no simulator, agent or broker left running from this demo dir
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True,
                               text=True, check=False).stdout.split()  # fmt: skip
    assert [p for p in leftovers if int(p) != os.getpid()] == []
