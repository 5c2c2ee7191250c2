"""Delivery against a real InfluxDB 1.x: outages, kill -9 of the writing process, replay after a
crash between write and ack, and a bounded spool during a long outage.

Each proof counts the points InfluxDB holds, so a lost or duplicated reading fails the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from ingest.spool import Spool
from ingest.stores import open_store
from ingest.writer import Forwarder
from tests.ingest._helpers import FIELD, floats
from tests.servers import InfluxDB, wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def count_points(influxdb: InfluxDB, db: str, field: str = FIELD) -> int:
    result = influxdb.query(f'SELECT COUNT("value") FROM "{field}"', db)["results"][0]
    series = result.get("series")
    return int(series[0]["values"][0][1]) if series else 0


def distinct_values(influxdb: InfluxDB, db: str) -> list[float]:
    result = influxdb.query(f'SELECT "value" FROM "{FIELD}"', db)["results"][0]
    return [row[1] for row in result["series"][0]["values"]] if result.get("series") else []


@pytest.fixture
def database(influxdb: InfluxDB) -> str:
    return influxdb.create_database("plant_" + uuid.uuid4().hex[:8])


def test_an_outage_loses_nothing_and_delivery_resumes(
    influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    store = open_store(influxdb.store_url(database) + "?timeout=2")
    with Spool(tmp_path / "spool.db") as spool:
        fwd = Forwarder(
            spool, store, batch_size=500, flush_interval_s=0.05, initial_backoff_s=0.05,
            max_backoff_s=0.3,
        )  # fmt: skip
        fwd.start()
        try:
            spool.put(floats(1000))
            assert fwd.flush(30)
            influxdb.stop()
            for k in range(1, 4):
                spool.put(floats(1000, start=1000 * k))
            wait_until(lambda: fwd.stats()["store_unavailable"] >= 2, 30, "failed retries")
            assert spool.depth() == 3000  # nothing acked while InfluxDB is down
            influxdb.start()
            assert fwd.flush(60), fwd.stats()
        finally:
            fwd.stop(drain=False)
        assert count_points(influxdb, database) == 4000
        assert sorted(distinct_values(influxdb, database)) == [1000.0 + i for i in range(4000)]
        assert spool.stats()["forwarded"] == 4000
    store.close()


PRODUCER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from ingest.spool import Spool
    from ingest.stores import open_store
    from ingest.writer import Forwarder
    from tests.ingest._helpers import floats
    spool = Spool({spool!r})
    fwd = Forwarder(spool, open_store({url!r}), batch_size=200, flush_interval_s=0.01)
    fwd.start()
    for k in range(40):
        spool.put(floats(200, start=200 * k))
    print("accepted", flush=True)  # every put has returned: all 8000 are durable
    fwd.flush(600)  # killed while forwarding
    """
)


def test_readings_accepted_before_kill_minus_9_are_all_delivered_once(
    influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.db"
    url = influxdb.store_url(database)
    child = subprocess.Popen(
        [sys.executable, "-c", PRODUCER.format(repo=str(REPO), spool=str(spool_path), url=url)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "accepted"
    finally:
        os.kill(child.pid, signal.SIGKILL)  # as a power cut would, mid-forwarding
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    store = open_store(url)
    with Spool(spool_path) as spool:  # a new process would do exactly this at start
        fwd = Forwarder(spool, store, batch_size=1000, flush_interval_s=0.01)
        fwd.start()
        assert fwd.stop(drain=True, timeout_s=60)
    store.close()
    assert count_points(influxdb, database) == 8000
    assert sorted(distinct_values(influxdb, database)) == [1000.0 + i for i in range(8000)]


CRASH_BETWEEN_WRITE_AND_ACK = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from ingest.spool import Spool
    from ingest.stores import open_store
    from tests.ingest._helpers import floats
    spool = Spool({spool!r})
    spool.put(floats(3000))
    upto, batch = spool.peek(10_000)
    result = open_store({url!r}).write(batch)
    assert result.written == 3000, result
    os.kill(os.getpid(), signal.SIGKILL)  # InfluxDB has the points; the spool was never acked
    """
)


def test_replay_after_a_crash_between_write_and_ack_adds_no_duplicates(
    influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.db"
    url = influxdb.store_url(database)
    script = CRASH_BETWEEN_WRITE_AND_ACK.format(repo=str(REPO), spool=str(spool_path), url=url)
    child = subprocess.run([sys.executable, "-c", script], timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL
    assert count_points(influxdb, database) == 3000
    store = open_store(url)
    with Spool(spool_path) as spool:
        assert spool.depth() == 3000  # the batch is still there: it will be replayed
        fwd = Forwarder(spool, store, batch_size=5000, flush_interval_s=0.01)
        fwd.start()
        assert fwd.stop(drain=True, timeout_s=60)
        assert fwd.stats()["forwarded"] == 3000
    store.close()
    assert count_points(influxdb, database) == 3000  # replayed, not duplicated


def test_a_long_outage_fills_the_bounded_spool_and_every_drop_is_counted(
    influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    with Spool(tmp_path / "probe.db") as probe:
        probe.put(floats(500))
        one_batch = probe.stats()["bytes"]
    store = open_store(influxdb.store_url(database) + "?timeout=2")
    influxdb.stop()
    with Spool(tmp_path / "spool.db", max_bytes=int(one_batch * 4.5)) as spool:
        fwd = Forwarder(spool, store, batch_size=500, initial_backoff_s=0.05, max_backoff_s=0.2)
        fwd.start()
        try:
            for k in range(10):
                spool.put(floats(500, start=500 * k))
            stats = spool.stats()
            assert stats["dropped"] == {"spool_full_oldest": 3000}
            assert stats["accepted"] == 5000 and spool.depth() == 2000
            influxdb.start()
            assert fwd.flush(60), fwd.stats()
        finally:
            fwd.stop(drain=False)
    store.close()
    assert count_points(influxdb, database) == 2000
    assert min(distinct_values(influxdb, database)) == 1000.0 + 3000  # the newest were kept
