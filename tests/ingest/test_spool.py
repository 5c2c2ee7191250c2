"""The durable spool: exact round trip, invalid readings, bounds and policies, restarts, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reading import Quality, Reading, ReadingBatch
from ingest import batch_codec
from ingest.spool import Spool, SpoolLocked
from tests.ingest._helpers import KILN, T0, floats, mixed
from tests.servers import wait_until

REPO = Path(__file__).resolve().parents[2]


def drain(spool: Spool, max_rows: int = 1_000_000) -> list[Reading]:
    out: list[Reading] = []
    while True:
        upto, batch = spool.peek(max_rows)
        if len(batch) == 0:
            return out
        out += batch.to_readings()
        spool.ack(upto)


def test_put_peek_ack_keeps_every_value_exactly(tmp_path: Path) -> None:
    readings = [*mixed(), Reading(KILN, "x_c", 0.1 + 0.2, Quality.GOOD, -5, 2**62, "µ")]
    with Spool(tmp_path / "spool.db") as spool:
        result = spool.put(ReadingBatch.from_readings(readings))
        assert result.written == len(readings) and result.rejected == []
        assert spool.depth() == len(readings)
        upto, batch = spool.peek(100)
        assert batch.to_readings() == readings
        assert spool.depth() == len(readings)  # peek does not remove
        assert spool.ack(upto) == len(readings)
        assert spool.depth() == 0
        assert spool.peek(100)[1].to_readings() == []
        stats = spool.stats()
        assert stats["accepted"] == stats["forwarded"] == len(readings)


def test_invalid_readings_are_rejected_and_dead_lettered_the_rest_kept(tmp_path: Path) -> None:
    good = mixed()
    bad = [
        Reading(KILN, "t_c", float("nan"), Quality.GOOD, T0, T0),
        Reading("xinghai/plant-1/kiln-2", "t_c", 1.0, Quality.GOOD, T0, T0),
        Reading(KILN, "", 1.0, Quality.GOOD, T0, T0),
        Reading(KILN, "t_c", "bad \udc80 bytes", Quality.GOOD, T0, T0),
        Reading(KILN, "t_c", float("-inf"), Quality.GOOD, T0, T0),
    ]
    with Spool(tmp_path / "spool.db") as spool:
        result = spool.put(ReadingBatch.from_readings([bad[0], *good, *bad[1:]]))
        assert result.written == len(good)
        reasons = [r.reason for r in result.rejected]
        assert len(reasons) == len(bad)
        assert "not a finite number" in reasons[0]
        assert "four non-empty parts" in reasons[1]
        assert "empty field name" in reasons[2]
        assert "UTF-8" in reasons[3]
        assert drain(spool) == good
        letters = spool.dead_letters()
        assert len(letters) == len(bad)
        assert {d["reason"] for d in letters} == set(reasons)
        assert all(d["source"] == "spool" for d in letters)
        assert spool.stats()["rejected_invalid"] == len(bad)


def test_dead_letter_keeps_raw_payloads_and_is_bounded(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_dead_letters=3) as spool:
        for i in range(5):
            spool.dead_letter("mqtt", "not JSON", f"topic t/{i}", raw=b"\xff{" + bytes([i]))
        letters = spool.dead_letters()
        assert [d["detail"] for d in letters] == ["topic t/4", "topic t/3", "topic t/2"]
        assert letters[0]["raw"] == b"\xff{\x04"
        stats = spool.stats()
        assert stats["dead_lettered"] == 5
        assert stats["dropped"]["dead_letter_overflow"] == 2


def test_pending_readings_and_counters_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.put(floats(100))
        spool.put(floats(50, start=100))
        upto, _ = spool.peek(100)
        spool.ack(upto)
    with Spool(path) as spool:
        assert spool.depth() == 50
        assert drain(spool) == floats(50, start=100).to_readings()
        stats = spool.stats()
        assert (stats["accepted"], stats["forwarded"]) == (150, 150)


def test_a_second_owner_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db"), pytest.raises(SpoolLocked, match="in use"):
        Spool(tmp_path / "spool.db")


def test_peek_takes_whole_batches_up_to_max_rows_and_splits_big_puts(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", chunk_readings=400) as spool:
        spool.put(floats(1000))  # stored as 400 + 400 + 200
        upto, batch = spool.peek(900)
        assert len(batch) == 800
        spool.ack(upto)
        upto, batch = spool.peek(10)  # at least one batch even when it is bigger
        assert len(batch) == 200
        assert batch.to_readings() == floats(200, start=800).to_readings()


def test_drop_oldest_keeps_the_newest_and_counts_every_drop(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        one = spool.put(floats(100)) and spool.stats()["bytes"]
    (tmp_path / "spool.db").unlink()
    with Spool(tmp_path / "spool.db", max_bytes=int(one * 3.5), policy="drop_oldest") as spool:
        for k in range(10):
            assert spool.put(floats(100, start=100 * k)).written == 100
        assert spool.depth() == 300
        assert spool.stats()["dropped"] == {"spool_full_oldest": 700}
        assert drain(spool) == floats(300, start=700).to_readings()


def test_reject_new_refuses_what_does_not_fit(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        spool.put(floats(100))
        one = spool.stats()["bytes"]
    (tmp_path / "spool.db").unlink()
    with Spool(tmp_path / "spool.db", max_bytes=int(one * 2.5), policy="reject_new") as spool:
        results = [spool.put(floats(100, start=100 * k)) for k in range(4)]
        assert [r.written for r in results] == [100, 100, 0, 0]
        assert {x.reason for x in results[2].rejected} == {"spool full"}
        assert len(results[3].rejected) == 100
        assert spool.stats()["dropped"] == {"spool_full_new": 200}
        assert drain(spool) == floats(200).to_readings()


def test_bad_policy_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop_oldest, reject_new"):
        Spool(tmp_path / "s.db", policy="drop_newest")


def test_concurrent_puts_lose_nothing(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:

        def producer(k: int) -> None:
            for j in range(20):
                spool.put(floats(50, start=(k * 20 + j) * 50))

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = drain(spool, 777)
        assert len(got) == 6 * 20 * 50
        assert sorted(r.source_time_ns for r in got) == [
            T0 + i * 1_000_000_000 for i in range(6 * 20 * 50)
        ]


def test_oldest_age_uses_the_injected_clock(tmp_path: Path) -> None:
    now = [1_000]
    with Spool(tmp_path / "spool.db", clock=lambda: now[0]) as spool:
        assert spool.oldest_age_ns(5_000) is None
        spool.put(floats(3))
        now[0] = 2_000
        spool.put(floats(3, start=3))
        assert spool.oldest_age_ns(5_000) == 4_000


def test_a_damaged_batch_is_quarantined_not_blocking(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.put(floats(10))
        spool.put(floats(10, start=10))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE batch SET payload = x'00ff00' WHERE id = 1")
    with Spool(path) as spool:
        assert drain(spool) == floats(10, start=10).to_readings()
        assert spool.stats()["dropped"] == {"damaged": 10}
        assert spool.dead_letters()[0]["reason"] == "damaged batch"


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from ingest.spool import Spool
    from tests.ingest._helpers import floats
    spool = Spool({path!r})
    for k in range(5):
        spool.put(floats(1000, start=1000 * k))
    print("accepted", flush=True)
    time.sleep(600)  # killed here, never closed
    """
)


def test_accepted_readings_survive_kill_minus_9(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), path=str(path))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "accepted"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    with Spool(path) as spool:  # the dead owner's lock is gone with it
        got = drain(spool)
    assert len(got) == 5000
    np.testing.assert_array_equal(
        [r.value for r in got], [r.value for r in floats(5000).to_readings()]
    )


def test_a_batch_larger_than_the_whole_spool_is_refused_not_kept(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_bytes=2000) as spool:
        assert spool.put(floats(10)).written == 10
        result = spool.put(floats(1000, start=10))
        assert result.written == 0
        assert {r.reason for r in result.rejected} == {"batch larger than the whole spool"}
        assert spool.depth() == 10  # the older readings were not sacrificed for nothing
        assert spool.stats()["dropped"] == {"batch_too_large": 1000}


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
_READING = st.builds(
    Reading,
    st.sampled_from([KILN, "e/s/l/ä b", "x/y/z/w"]),
    st.sampled_from(["t_c", "温度", "flow m3/h"]),
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.booleans(), _TEXT,
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ),
    st.sampled_from(list(Quality)),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    _TEXT,
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(readings=st.lists(_READING, max_size=30))
def test_the_stored_form_of_a_batch_is_exact(readings: list[Reading]) -> None:
    batch = ReadingBatch.from_readings(readings)
    back = batch_codec.decode(batch_codec.encode(batch))
    assert back.to_readings() == readings
    assert [type(r.value) for r in back.to_readings()] == [type(r.value) for r in readings]
    assert [
        np.float64(r.value).tobytes() for r in back.to_readings() if type(r.value) is float
    ] == [np.float64(r.value).tobytes() for r in readings if type(r.value) is float]


def test_a_damaged_blob_is_a_clear_error() -> None:
    blob = batch_codec.encode(floats(5))
    for bad in (b"", b"XXXX" + blob[4:], blob[:-3], blob + b"\0"):
        with pytest.raises(batch_codec.CorruptBatch):
            batch_codec.decode(bad)


def test_puts_waiting_on_a_commit_are_written_together_in_one_transaction(
    tmp_path: Path,
) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        spool.put(floats(1))
        assert spool.commits == 1
        results: list = [None] * 5
        # Hold the commit lock as a slow fsync would; five sources put meanwhile.
        with spool._lock:
            threads = [
                threading.Thread(
                    target=lambda k=k: results.__setitem__(k, spool.put(floats(3, start=1 + 3 * k)))
                )
                for k in range(5)
            ]
            for t in threads:
                t.start()
            wait_until(lambda: len(spool._queue) == 5, 10, "five puts to queue up")
        for t in threads:
            t.join(10)
        assert [r.written for r in results] == [3] * 5
        assert spool.commits == 2  # one transaction, one fsync, for all five
        assert spool.stats()["put_commits"] == 2
        assert sorted(r.source_time_ns for r in drain(spool)) == [
            r.source_time_ns for r in floats(16).to_readings()
        ]


def test_a_failed_commit_fails_every_put_of_its_group_and_keeps_counts_true(
    tmp_path: Path,
) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        spool.put(floats(4))
        spool._db.execute("CREATE TRIGGER no_more BEFORE INSERT ON batch BEGIN "
                          "SELECT RAISE(ABORT, 'disk says no'); END")  # fmt: skip
        with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
            spool.put(floats(4, start=4))
        assert spool.depth() == 4 and spool.stats()["accepted"] == 4
        spool._db.execute("DROP TRIGGER no_more")
        assert spool.put(floats(4, start=4)).written == 4
        assert spool.depth() == 8
