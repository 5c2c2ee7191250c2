"""The forwarder and batching writer at their seam: a fake store that records, fails and refuses.

(The same forwarder against a real InfluxDB, outages and kill -9: test_writer_influx.py.)
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from core.reading import ReadingBatch
from ingest.contracts import Rejected, StoreUnavailable, WriteResult
from ingest.spool import Spool
from ingest.store_sqlite import SQLiteStore
from ingest.writer import BatchingWriter, Forwarder, MemoryBuffer
from tests.ingest._helpers import FIELD, KILN, T0, floats
from tests.servers import wait_until


class RecordingStore:
    """Records every batch; fails with ``failures`` (exceptions raised in order) first;
    refuses readings whose value is in ``refuse``."""

    def __init__(
        self, failures: list[Exception] | None = None, refuse: frozenset[float] = frozenset()
    ) -> None:
        self.batches: list[ReadingBatch] = []
        self.failures = list(failures or [])
        self.refuse = refuse
        self.calls = 0
        self.lock = threading.Lock()

    def write(self, batch: ReadingBatch) -> WriteResult:
        with self.lock:
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            self.batches.append(batch)
            rejected = [
                Rejected(r, "field type conflict")
                for r in batch.to_readings()
                if r.value in self.refuse
            ]
            return WriteResult(len(batch) - len(rejected), rejected)

    def sizes(self) -> list[int]:
        with self.lock:
            return [len(b) for b in self.batches]

    def total(self) -> int:
        return sum(self.sizes())


@pytest.fixture
def spool(tmp_path: Path):
    with Spool(tmp_path / "spool.db", chunk_readings=100) as s:
        yield s


def test_size_triggered_batches_then_flush_sends_the_rest(spool: Spool) -> None:
    store = RecordingStore()
    fwd = Forwarder(spool, store, batch_size=200, flush_interval_s=3600)
    fwd.start()
    try:
        spool.put(floats(500))  # five stored chunks of 100
        # (the ack follows the store's answer: wait for both)
        wait_until(lambda: spool.depth() == 100, 10, "two full batches delivered and acked")
        assert store.sizes() == [200, 200]  # the rest is not due: below batch_size, interval far
        assert fwd.flush(10)
        assert store.sizes() == [200, 200, 100]
        assert spool.depth() == 0
    finally:
        fwd.stop(drain=False)
    sent = ReadingBatch.concat(store.batches).to_readings()
    assert sent == floats(500).to_readings()


def test_interval_triggered_flush_of_a_small_batch(spool: Spool) -> None:
    store = RecordingStore()
    fwd = Forwarder(spool, store, batch_size=10_000, flush_interval_s=0.05)
    fwd.start()
    try:
        spool.put(floats(7))
        wait_until(lambda: spool.depth() == 0, 10, "the interval flush")
        assert store.sizes() == [7]
    finally:
        fwd.stop()


def test_outage_is_retried_with_growing_jittered_backoff_and_nothing_lost(spool: Spool) -> None:
    down = [StoreUnavailable("connection refused")] * 4
    store = RecordingStore(failures=down)
    delays: list[float] = []
    fwd = Forwarder(
        spool, store, batch_size=100, initial_backoff_s=1.0, max_backoff_s=5.0, jitter=0.2,
        sleep=delays.append, rng=random.Random(7),
    )  # fmt: skip
    spool.put(floats(100))
    for _ in range(4):
        assert fwd.deliver_once() == 0
        assert spool.depth() == 100  # not acked while the store is down
    assert fwd.stats()["last_error"].startswith("store unavailable")
    assert fwd.deliver_once() == 100
    assert spool.depth() == 0 and store.total() == 100
    assert fwd.stats()["store_unavailable"] == 4 and fwd.stats()["last_error"] is None
    for delay, nominal in zip(delays, [1.0, 2.0, 4.0, 5.0], strict=True):
        assert nominal * 0.8 <= delay <= nominal
    assert len(set(delays)) == 4  # jittered, not in lock step


def test_store_rejections_go_to_dead_letters_and_the_rest_is_acked(spool: Spool) -> None:
    store = RecordingStore(refuse={1003.0, 1007.0})
    fwd = Forwarder(spool, store, batch_size=100, sleep=lambda s: None)
    spool.put(floats(10))
    assert fwd.deliver_once() == 8
    assert spool.depth() == 0
    letters = spool.dead_letters()
    assert sorted(float(d["value"]) for d in letters) == [1003.0, 1007.0]
    assert {d["reason"] for d in letters} == {"field type conflict"}
    assert {d["source"] for d in letters} == {"forwarder"}
    assert fwd.stats()["store_rejected"] == 2


def test_a_poison_batch_is_dead_lettered_after_max_attempts(spool: Spool) -> None:
    store = RecordingStore(failures=[ValueError("HTTP 400: unparseable")] * 10)
    fwd = Forwarder(spool, store, batch_size=100, max_poison_attempts=3, sleep=lambda s: None)
    spool.put(floats(5))
    spool.put(floats(5, start=5))
    for _ in range(3):
        fwd.deliver_once()
    # the first stored batch (the oldest 5... here both fit one peek) is given up on
    assert spool.depth() == 0
    letters = spool.dead_letters(100)
    assert len(letters) == 10 and {d["reason"] for d in letters} == {"store error"}
    assert "unparseable" in letters[0]["detail"]


def test_stop_without_drain_keeps_undelivered_readings_in_the_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    store = RecordingStore(failures=[StoreUnavailable("down")] * 1000)
    with Spool(path) as spool:
        fwd = Forwarder(spool, store, batch_size=10, initial_backoff_s=0.01, max_backoff_s=0.02)
        fwd.start()
        spool.put(floats(25))
        wait_until(lambda: store.calls >= 3, 10, "retries")
        assert not fwd.flush(timeout_s=0.2)
        assert not fwd.stop(drain=False)
        assert spool.depth() == 25
    with Spool(path) as spool:
        assert spool.depth() == 25


def test_forwarder_into_the_sqlite_store_end_to_end(spool: Spool) -> None:
    store = SQLiteStore()
    fwd = Forwarder(spool, store, batch_size=300, flush_interval_s=0.02)
    fwd.start()
    for k in range(10):
        spool.put(floats(100, start=100 * k))
    assert fwd.stop(drain=True)
    series = store.series(KILN, FIELD, T0, T0 + 10**13)
    assert list(series.values) == [1000.0 + i for i in range(1000)]
    assert spool.stats()["forwarded"] == 1000


def test_batching_writer_memory_buffer_bounds_and_delivers() -> None:
    buffer = MemoryBuffer(max_readings=250)
    for k in range(5):
        buffer.put(floats(100, start=100 * k))
    assert buffer.depth() == 200 and buffer.counters["dropped"] == 300
    store = SQLiteStore()
    writer = BatchingWriter(store, flush_interval_s=0.02, batch_size=1000)
    result = writer.put(ReadingBatch.concat([floats(10), floats(1).take(slice(0, 0))]))
    assert result.written == 10
    bad = writer.put(ReadingBatch.from_floats("no/path", FIELD, [1.0], [T0], received_time_ns=T0))
    assert len(bad.rejected) == 1 and writer.dead_letters()[0]["reason"].startswith("asset")
    writer.close()
    assert store.count() == 10


def test_bad_arguments_are_refused(spool: Spool) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Forwarder(spool, RecordingStore(), batch_size=0)
    with pytest.raises(ValueError, match="jitter"):
        Forwarder(spool, RecordingStore(), jitter=2)


class GatedStore(RecordingStore):
    """The first write waits until a second write has started (proves two are in flight),
    then fails once as if InfluxDB had dropped the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.second_started = threading.Event()
        self.first = True

    def write(self, batch: ReadingBatch) -> WriteResult:
        with self.lock:
            first, self.first = self.first, False
        if first:
            assert self.second_started.wait(10), "the second write never started"
            raise StoreUnavailable("connection reset")
        self.second_started.set()
        return super().write(batch)


def test_two_writes_in_flight_acks_stay_in_order_and_a_failure_loses_nothing(
    spool: Spool,
) -> None:
    store = GatedStore()
    fwd = Forwarder(
        spool, store, batch_size=100, flush_interval_s=0.01, in_flight=2,
        initial_backoff_s=0.01,
    )  # fmt: skip
    spool.put(floats(300))  # three stored batches of 100
    fwd.start()
    try:
        assert fwd.flush(20)
    finally:
        fwd.stop(drain=False)
    # batch 2 was written while batch 1 failed; it could not be acked before batch 1, so it
    # was written again after the retry (harmless: idempotent). Nothing is missing.
    delivered = {r.source_time_ns for b in store.batches for r in b.to_readings()}
    assert delivered == {r.source_time_ns for r in floats(300).to_readings()}
    assert store.sizes().count(100) >= 3
    assert fwd.stats()["store_unavailable"] == 1
    assert spool.stats()["forwarded"] == 300


def test_stop_interrupts_a_long_backoff(spool: Spool) -> None:
    store = RecordingStore(failures=[StoreUnavailable("down")] * 100)
    fwd = Forwarder(spool, store, batch_size=10, initial_backoff_s=600, max_backoff_s=600)
    spool.put(floats(10))
    fwd.start()
    wait_until(lambda: fwd.stats()["backoff_s"] > 0, 10, "the first failed write")
    stopped = threading.Event()
    threading.Thread(target=lambda: (fwd.stop(drain=False, timeout_s=10), stopped.set())).start()
    assert stopped.wait(10), "stop() waited for the 10-minute backoff"
    assert spool.depth() == 10
