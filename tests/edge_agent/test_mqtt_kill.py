"""kill -9 of the agent mid-stream: every message the broker accepted ends up in the spool.

The agent acks a message only after the spool fsynced its readings, so what was in flight
when the process died is re-sent by the broker to the restarted agent (persistent session).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from ingest import batch_codec
from tests.edge_agent.mqtt_support import publisher
from tests.edge_agent.test_mqtt_json import CYCLE_TOPIC, cycle
from tests.servers import Mosquitto, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 400


def start_agent(broker: Mosquitto, client_id: str, spool: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.edge_agent.mqtt_support", broker.url, client_id, str(spool)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child prints "ready" once subscribed
    assert line.strip() == "ready", f"agent did not start (exit {proc.poll()})"
    return proc


def publish_paced(pub: mqtt.Client, n: int, interval_s: float) -> None:
    """Cycles 1..n at QoS 1, one every ``interval_s`` (a device's pace, not a wait)."""
    infos = []
    for i in range(1, n + 1):
        infos.append(pub.publish(CYCLE_TOPIC, cycle(i), qos=1))
        time.sleep(interval_s)
    for info in infos:
        info.wait_for_publish(10)


def spooled_counts(spool: Path) -> list[int]:
    """count_total of every spooled reading, read beside the running agent (WAL allows it)."""
    if not spool.exists():
        return []
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
    try:
        counts = []
        for (blob,) in db.execute("SELECT payload FROM batch ORDER BY id"):
            batch = batch_codec.decode(blob)
            for r in batch.to_readings():
                if r.field == "count_total":
                    counts.append(r.value)
        return counts
    finally:
        db.close()


def test_kill_9_mid_stream_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    client_id = f"kw-kill-{uuid.uuid4().hex[:6]}"
    spool = tmp_path / "spool" / "spool.db"
    first = start_agent(mosquitto, client_id, spool)
    pub = publisher(mosquitto.port)
    # A press publishing a cycle every 2 ms: the stream is still flowing when the agent dies
    # and goes on while it is down (the broker queues for the persistent session). Published
    # all at once, a fast machine spooled all 400 before the kill could land.
    stream = threading.Thread(target=publish_paced, args=(pub, N, 0.002), daemon=True)
    stream.start()
    try:
        wait_until(lambda: len(spooled_counts(spool)) >= 30, 30, "the agent to spool some cycles")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = set(spooled_counts(spool))
        assert len(at_kill) < N, "the agent finished before the kill; the test proves nothing"
        second = start_agent(mosquitto, client_id, spool)
        try:
            wait_until(
                lambda: set(spooled_counts(spool)) == set(range(1, N + 1)),
                60, "every cycle in the spool after the restart",
            )  # fmt: skip
        finally:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    finally:
        stream.join(30)
        pub.disconnect()
        pub.loop_stop()
    counts = Counter(spooled_counts(spool))
    # Re-sent messages may appear twice (same points: idempotent in InfluxDB), never zero times.
    assert set(counts) == set(range(1, N + 1))
    # A duplicate is a message spooled before the kill whose ack the broker never took in: acks
    # still in the dead process's buffers, or read by no one before the kernel reset the
    # connection (measured: Mosquitto 2.0.11 reads the acks of a fast stream slowly, so up to
    # everything spooled before the kill can come again). Never anything spooled after the
    # restart, and never more than once more.
    twice = {n for n, c in counts.items() if c > 1}
    assert twice <= at_kill, f"re-sent after the restart: {sorted(twice - at_kill)[:10]}"
    assert max(counts.values()) == 2 or not twice
