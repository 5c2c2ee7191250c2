"""The durable spool: readings accepted here survive a crash of the process and an outage of
the store, until the forwarder (``ingest.writer.Forwarder``) has delivered them.

Sources call :meth:`Spool.put` (the :class:`~ingest.contracts.Sink` seam); the forwarder drains
with :meth:`Spool.peek` / :meth:`Spool.ack`. One process owns a spool file at a time (an
exclusive ``flock`` on ``<path>.lock``; the kernel releases it when the process dies, so a
restarted agent takes over a crashed one's spool).

Durability: SQLite in WAL mode with ``synchronous=FULL``. Every ``put`` is one transaction;
with FULL, SQLite fsyncs the WAL before the commit returns, so a batch ``put`` has returned
is on disk and survives kill -9 *and* a power cut. (``NORMAL`` would survive kill -9 but may
lose the last transactions on power loss: an edge box in a workshop loses power, so FULL.)
The cost is one fsync per ``put``; sources put batches, not single readings.

Storage: one row per batch, the batch as a compact columnar blob (``ingest.batch_codec``);
a batch larger than ``chunk_readings`` is split so the forwarder can take it in pieces.

Bound: ``max_bytes`` of stored blobs (the file itself stays close to that: SQLite reuses the
freed pages). When a new batch does not fit:

* ``drop_oldest`` (default): delete the oldest batches until it fits. Keeps the present, which
  is what an operator watches; the loss is counted under ``dropped["spool_full_oldest"]``.
* ``reject_new``: refuse the new batch; its readings come back as rejected with reason
  ``spool full`` and are counted under ``dropped["spool_full_new"]``. Use it when the source
  can hold data itself (an OPC UA server's history, an MQTT broker's persistent session).

Counters (accepted, forwarded, dropped by reason, ...) are stored in the same transactions as
the data, so ``stats()`` stays true across restarts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.reading import Reading, ReadingBatch, now_ns
from ingest import batch_codec
from ingest.batch_check import check_batch
from ingest.contracts import Rejected, WriteResult

log = logging.getLogger(__name__)

POLICIES = ("drop_oldest", "reject_new")
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, so ack(upto) is safe
    readings INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    spooled_ns INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    raw BLOB,
    asset TEXT, field TEXT, value TEXT, quality INTEGER,
    source_time_ns INTEGER, received_time_ns INTEGER, unit TEXT
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(slots=True)
class _Put:
    """One ``put`` waiting for (or done by) a group commit."""

    good: ReadingBatch
    rejected: list[Rejected]
    blobs: list[bytes]
    now: int
    full: list[Rejected] = field(default_factory=list)
    dropped: int = 0
    done: bool = False
    error: BaseException | None = None


class SpoolLocked(RuntimeError):
    """Another process holds this spool file (two agents must not share one spool)."""


class Spool:
    """A size-bounded, crash-safe FIFO of reading batches (see the module docstring).

    Thread-safe: any number of threads may ``put`` while one forwarder peeks and acks.
    ``clock`` gives UTC nanoseconds (injected in tests).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        policy: str = "drop_oldest",
        chunk_readings: int = 10_000,
        max_dead_letters: int = 100_000,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy {policy!r}: expected one of {', '.join(POLICIES)}")
        if max_bytes <= 0:
            raise ValueError(f"spool max_bytes {max_bytes}: expected a positive number of bytes")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.policy = policy
        self.chunk_readings = max(1, chunk_readings)
        self.max_dead_letters = max_dead_letters
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue_lock = threading.Lock()
        self._queue: list[_Put] = []  # puts waiting for the next group commit
        self.commits = 0  # transactions that made puts durable (one fsync each)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(f"{self.path}.lock", "a+b")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise SpoolLocked(f"spool {self.path} is in use by another process") from None
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._reload_counts()
        self._closed = False
        if self._depth:
            log.info("spool %s: %d readings waiting from before a restart", self.path, self._depth)

    # -- the Sink seam -------------------------------------------------------------------

    def put(self, batch: ReadingBatch) -> WriteResult:
        """Make ``batch`` durable. Returns once it is fsynced (see module docstring).

        Invalid readings are not stored: they come back in ``rejected`` and are copied to the
        dead-letter table. With ``reject_new``, a batch that does not fit comes back whole as
        rejected (``spool full``). Raises ``sqlite3.Error`` only if the disk itself fails
        (full, read-only): then nothing of this batch was accepted.

        Group commit: puts from several threads that arrive while a commit is running are
        written together in the next transaction, one fsync for all of them, so many sources
        putting small batches are not limited to one fsync each.
        """
        good, rejected = check_batch(batch)
        blobs = [
            batch_codec.encode(good.take(slice(i, i + self.chunk_readings)))
            for i in range(0, len(good), self.chunk_readings)
        ]
        entry = _Put(good, rejected, blobs, self._clock())
        with self._queue_lock:
            self._queue.append(entry)
        with self._lock:
            if not entry.done:  # nobody committed it while we waited: lead the next group
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if entry.error is not None:
            raise entry.error
        if rejected:
            log.warning(
                "spool %s: rejected %d invalid readings, e.g. %s",
                self.path, len(rejected), rejected[0].reason,
            )  # fmt: skip
        if entry.full:
            log.warning(
                "spool %s: refused %d readings (%s)", self.path, len(entry.full),
                entry.full[0].reason,
            )  # fmt: skip
        if entry.dropped:
            log.warning(
                "spool %s full (drop_oldest): dropped %d oldest readings", self.path, entry.dropped
            )
        written = len(good) if entry.blobs else 0
        return WriteResult(written=written, rejected=rejected + entry.full)

    def _commit_group(self, group: list[_Put]) -> None:
        """Write every put of ``group`` in one transaction (called with ``self._lock``)."""
        try:
            self._check_open()
            with self._transaction():
                for entry in group:
                    self._apply(entry)
            self.commits += 1
        except BaseException as exc:
            # Nothing of the group is stored; the in-memory counts may have moved: re-read.
            if not self._closed:
                self._reload_counts()
            for entry in group:
                entry.error, entry.blobs, entry.done = exc, [], True
            return
        for entry in group:
            entry.done = True
        self._changed.notify_all()

    def _apply(self, e: _Put) -> None:
        """One put inside the group's transaction: policy, dead letters, rows, counters."""
        size = sum(len(b) for b in e.blobs)
        if size > self.max_bytes:
            # Dropping everything else would not make it fit either: refuse it.
            e.full = [
                Rejected(r, "batch larger than the whole spool") for r in e.good.to_readings()
            ]
            self._bump("dropped.batch_too_large", len(e.full))
            e.blobs = []
        elif size > self.max_bytes - self._bytes and self.policy == "reject_new":
            e.full = [Rejected(r, "spool full") for r in e.good.to_readings()]
            self._bump("dropped.spool_full_new", len(e.full))
            e.blobs = []
        for item in e.rejected:
            self._insert_dead_letter(e.now, "spool", item.reason, "", None, item.reading)
        if e.rejected:
            self._bump("rejected_invalid", len(e.rejected))
        if not e.blobs:
            return
        e.dropped = self._make_room(size)
        starts = range(0, len(e.good), self.chunk_readings)
        for blob, start in zip(e.blobs, starts, strict=True):
            n = min(self.chunk_readings, len(e.good) - start)
            self._db.execute(
                "INSERT INTO batch (readings, bytes, spooled_ns, payload) VALUES (?,?,?,?)",
                (n, len(blob), e.now, blob),
            )
        self._bump("accepted", len(e.good))
        self._rows += len(e.blobs)
        self._depth += len(e.good)
        self._bytes += size

    def _reload_counts(self) -> None:
        row = self._db.execute("SELECT COUNT(*), SUM(readings), SUM(bytes) FROM batch").fetchone()
        self._rows, self._depth, self._bytes = row[0], row[1] or 0, row[2] or 0

    def close(self) -> None:
        """Close the file and release the lock. Pending readings stay for the next open."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._lock_file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- draining (the forwarder) --------------------------------------------------------

    def peek(self, max_rows: int, after_id: int = 0) -> tuple[int, ReadingBatch]:
        """The oldest spooled readings, not removed: whole stored batches up to ``max_rows``
        readings (at least one batch, even if larger). Returns ``(upto_id, batch)``: pass
        ``upto_id`` to :meth:`ack` once the store confirmed. ``(0, empty)`` when empty.
        ``after_id`` skips batches up to that id (the forwarder's writes already in flight).

        A stored batch that cannot be decoded (a damaged disk) is moved to the dead letters
        and skipped, so one bad sector cannot stop delivery.
        """
        rows = []
        with self._lock:
            self._check_open()
            # Iterate lazily: stop reading blobs as soon as enough readings are in hand.
            taken = 0
            for row in self._db.execute(
                "SELECT id, readings, payload FROM batch WHERE id > ? ORDER BY id", (after_id,)
            ):
                if rows and taken + row[1] > max_rows:
                    break
                rows.append(row)
                taken += row[1]
        upto, taken, batches = 0, 0, []
        for row_id, n, payload in rows:
            try:
                batches.append(batch_codec.decode(payload))
            except batch_codec.CorruptBatch as exc:
                self._quarantine(row_id, n, payload, str(exc))
                continue
            upto, taken = row_id, taken + n
        if not batches:
            return upto, ReadingBatch.empty()
        return upto, batches[0] if len(batches) == 1 else ReadingBatch.concat(batches)

    def ack(self, upto_id: int) -> int:
        """Remove every batch with id <= ``upto_id`` (delivered). Returns readings removed."""
        with self._lock:
            self._check_open()
            with self._transaction():
                n, size, rows = self._db.execute(
                    "SELECT COALESCE(SUM(readings),0), COALESCE(SUM(bytes),0), COUNT(*) "
                    "FROM batch WHERE id <= ?",
                    (upto_id,),
                ).fetchone()
                self._db.execute("DELETE FROM batch WHERE id <= ?", (upto_id,))
                self._bump("forwarded", n)
            self._depth -= n
            self._bytes -= size
            self._rows -= rows
            self._changed.notify_all()
        return n

    def wait_for(self, min_readings: int, timeout_s: float) -> int:
        """Block until at least ``min_readings`` are waiting, :meth:`wake` is called or
        ``timeout_s`` passes; returns the depth. Lets the forwarder sleep without polling."""
        with self._changed:
            if self._depth < min_readings and not self._closed:
                self._changed.wait(timeout_s)
            return self._depth

    def wake(self) -> None:
        """Wake every :meth:`wait_for` (a flush or stop was asked for)."""
        with self._changed:
            self._changed.notify_all()

    # -- dead letters --------------------------------------------------------------------

    def dead_letter(
        self,
        source: str,
        reason: str,
        detail: str = "",
        raw: bytes | str | None = None,
        reading: Reading | None = None,
    ) -> None:
        """Keep something that could not be delivered, with why, for an operator to inspect.

        Called by sources (an unparseable MQTT payload: ``raw`` is the payload) and by the
        forwarder (a reading the store refused). Bounded: beyond ``max_dead_letters`` the
        oldest are deleted (counted as ``dropped["dead_letter_overflow"]``).
        """
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "backslashreplace")
        with self._lock:
            self._check_open()
            with self._transaction():
                self._insert_dead_letter(self._clock(), source, reason, detail, raw, reading)

    def dead_letters(self, limit: int = 100) -> list[dict]:
        """The newest dead letters first, as dicts (time_ns, source, reason, detail, raw,
        asset, field, value, quality, source_time_ns, received_time_ns, unit)."""
        with self._lock:
            self._check_open()
            cur = self._db.execute(
                "SELECT time_ns, source, reason, detail, raw, asset, field, value, quality, "
                "source_time_ns, received_time_ns, unit FROM dead_letter "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- health --------------------------------------------------------------------------

    def depth(self) -> int:
        """Readings waiting to be forwarded."""
        return self._depth

    def oldest_age_ns(self, now_ns: int) -> int | None:
        """How long the oldest waiting batch has been spooled, or None when empty. A growing
        age means the store is not taking data: the health check alarms on it."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT MIN(spooled_ns) FROM batch").fetchone()
        return None if row[0] is None else now_ns - row[0]

    def stats(self) -> dict:
        """Counters since the spool file was created: ``accepted``, ``forwarded``,
        ``rejected_invalid``, ``dead_lettered``, ``dropped`` (by reason), and the current
        ``depth`` (readings), ``batches`` and ``bytes``."""
        with self._lock:
            self._check_open()
            rows = self._db.execute("SELECT name, value FROM counter").fetchall()
        out: dict = {"accepted": 0, "forwarded": 0, "rejected_invalid": 0, "dead_lettered": 0}
        dropped: dict[str, int] = {}
        for name, value in rows:
            if name.startswith("dropped."):
                dropped[name.removeprefix("dropped.")] = value
            else:
                out[name] = value
        out.update(
            dropped=dropped, depth=self._depth, batches=self._rows, bytes=self._bytes,
            max_bytes=self.max_bytes, policy=self.policy, put_commits=self.commits,
        )  # fmt: skip
        return out

    # -- internals (called with self._lock held) ---------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"spool {self.path} is closed")

    @contextlib.contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counter (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _make_room(self, size: int) -> int:
        """drop_oldest: delete the oldest batches until ``size`` more bytes fit."""
        dropped = 0
        excess = self._bytes + size - self.max_bytes
        while excess > 0 and self._rows:
            row_id, n, nbytes = self._db.execute(
                "SELECT id, readings, bytes FROM batch ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM batch WHERE id = ?", (row_id,))
            self._rows -= 1
            self._depth -= n
            self._bytes -= nbytes
            excess -= nbytes
            dropped += n
        if dropped:
            self._bump("dropped.spool_full_oldest", dropped)
        return dropped

    def _quarantine(self, row_id: int, n: int, payload: bytes, reason: str) -> None:
        log.error("spool %s: batch %d (%d readings) is damaged: %s", self.path, row_id, n, reason)
        with self._lock, self._transaction():
            self._insert_dead_letter(self._clock(), "spool", "damaged batch", reason, payload, None)
            deleted = self._db.execute("DELETE FROM batch WHERE id = ?", (row_id,)).rowcount
            if deleted:
                self._bump("dropped.damaged", n)
                self._rows -= 1
                self._depth -= n
                self._bytes -= len(payload)

    def _insert_dead_letter(
        self,
        time_ns: int,
        source: str,
        reason: str,
        detail: str,
        raw: bytes | None,
        reading: Reading | None,
    ) -> None:
        fields: tuple = (None,) * 7
        if reading is not None:
            fields = (
                reading.asset, reading.field, repr(reading.value), int(reading.quality),
                reading.source_time_ns, reading.received_time_ns, reading.unit,
            )  # fmt: skip
            fields = tuple(
                f.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(f, str) else f
                for f in fields
            )
        self._db.execute(
            "INSERT INTO dead_letter (time_ns, source, reason, detail, raw, asset, field, value, "
            "quality, source_time_ns, received_time_ns, unit) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (time_ns, source, reason, detail, raw, *fields),
        )
        self._bump("dead_lettered", 1)
        if self.max_dead_letters:
            cur = self._db.execute(
                "DELETE FROM dead_letter WHERE id <= (SELECT MAX(id) FROM dead_letter) - ?",
                (self.max_dead_letters,),
            )
            if cur.rowcount > 0:
                self._bump("dropped.dead_letter_overflow", cur.rowcount)


def spool_age_s(spool: Spool) -> float | None:
    """Convenience for health endpoints: age of the oldest waiting batch in seconds."""
    age = spool.oldest_age_ns(time.time_ns())
    return None if age is None else age / 1e9
