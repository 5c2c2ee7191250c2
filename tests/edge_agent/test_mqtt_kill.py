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
import uuid
from pathlib import Path

import pytest

from ingest import batch_codec
from tests.edge_agent.mqtt_support import publish_all, publisher
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
    try:
        publish_all(pub, [(CYCLE_TOPIC, cycle(n)) for n in range(1, N + 1)])
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
        pub.disconnect()
        pub.loop_stop()
    counts = spooled_counts(spool)
    # Re-sent messages may appear twice (same points: idempotent in InfluxDB), never zero times.
    assert set(counts) == set(range(1, N + 1))
    # Duplicates come only from unacked windows (max_inflight 10) re-sent after the kill or a
    # reconnect; far fewer than the stream itself.
    assert len(counts) - N < N // 2, f"{len(counts) - N} duplicates"
