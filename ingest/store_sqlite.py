"""The embedded store: SQLite, for the demo and for a workshop without an InfluxDB server.

Implements :class:`ingest.contracts.Store` (the same contract tests as InfluxDB) plus
:class:`ingest.contracts.RawReader`: :meth:`SQLiteStore.readings` and its paged form
:meth:`SQLiteStore.iter_readings`, raw reads that keep each value's type, quality and unit
(CSV export uses the paged one).

Schema: a ``series`` table (one row per asset + field) and a ``point`` table keyed by
``(series_id, time_ns)`` as a WITHOUT ROWID table, so a range read of one series is one
sequential walk of the primary key, and writing the same asset + field + source time again
replaces the point (idempotent, like InfluxDB). ``value`` has no declared type, so SQLite
keeps what it was given: REAL (float64, exact), INTEGER (int64, and bools as 0/1 with
``kind`` telling them apart) or TEXT.

Durability: WAL with ``synchronous=FULL`` (a write the forwarder was told succeeded is on disk,
so the spool may forget it). Thread-safe: writes go through one connection behind a lock;
reads use a connection per thread, so a long read (the API) runs beside the writer (the
forwarder). Several processes may share one file (the agent writes, the API and an import
read or write): series created elsewhere are found on a cache miss, and a lock held by another
process beyond ``BUSY_TIMEOUT_S`` (or a full disk) is :class:`StoreUnavailable`, which the
forwarder retries.

URLs (``ingest.stores.open_store``): ``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db``, ``sqlite:///:memory:``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from core.reading import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_STR, Quality, Reading, ReadingBatch
from ingest.batch_check import check_batch
from ingest.contracts import Series, StoreUnavailable, WriteResult
from ingest.downsample import downsample
from ingest.paging import DEFAULT_PAGE_SIZE, check_page_size, pages_by_time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    asset TEXT NOT NULL,
    field TEXT NOT NULL,
    has_text INTEGER NOT NULL DEFAULT 0,  -- 1 once a text value was written: read as object array
    UNIQUE (asset, field)
);
CREATE TABLE IF NOT EXISTS point (
    series_id INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    value NOT NULL,
    quality INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (series_id, time_ns)
) WITHOUT ROWID;
"""

BUSY_TIMEOUT_S = 10.0
# Aggregates SQLite computes itself; TOTAL (not SUM) is always a float and cannot overflow.
_SQL_AGGREGATES = {
    "mean": "AVG(value)", "min": "MIN(value)", "max": "MAX(value)", "sum": "TOTAL(value)",
    "count": "COUNT(value)",
}  # fmt: skip
_NUMERIC_ROW = np.dtype([("time_ns", np.int64), ("value", np.float64), ("quality", np.uint8)])


class SQLiteStore:
    """Readings in one SQLite file (or in memory). See the module docstring."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # timeout: how long to wait for another process's write lock (the agent and the API
        # or an import may share one file) before giving up with StoreUnavailable.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._series_ids: dict[tuple[str, str], int] = {}
        self._text_series: set[int] = set()
        for sid, asset, field, has_text in self._db.execute(
            "SELECT id, asset, field, has_text FROM series"
        ):
            self._series_ids[(asset, field)] = sid
            if has_text:
                self._text_series.add(sid)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` or ``sqlite://``."""
        if not url.startswith("sqlite://"):
            raise ValueError(f"{url!r} is not a sqlite:// store URL")
        rest = url[len("sqlite://") :]
        path = rest[1:] if rest.startswith("/") else rest
        path = path.split("?", 1)[0]
        return cls(path or ":memory:")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- writing -------------------------------------------------------------------------

    def write(self, batch: ReadingBatch) -> WriteResult:
        """Write the valid readings in one transaction (replacing points with the same asset,
        field and source time); invalid ones come back as rejected."""
        good, rejected = check_batch(batch)
        n = len(good)
        if n == 0:
            return WriteResult(0, rejected)
        kind = good.kind
        values: list = good.number.tolist()
        for i in np.flatnonzero(kind == KIND_INT).tolist():
            values[i] = int(good.integer[i])
        for i in np.flatnonzero(kind == KIND_BOOL).tolist():
            values[i] = int(good.number[i] != 0)
        text_rows = np.flatnonzero(kind == KIND_STR).tolist()
        for i in text_rows:
            values[i] = good.text[i]
        try:
            self._write_rows(good, kind, values, text_rows)
        except sqlite3.OperationalError as exc:
            # Locked by another process for longer than the busy timeout, disk full, file
            # gone read-only: nothing was written; the forwarder keeps the batch and retries.
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc
        return WriteResult(n, rejected)

    def _write_rows(
        self, good: ReadingBatch, kind: np.ndarray, values: list, text_rows: list[int]
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                sids = self._ids_for(good.asset, good.field)
                for sid in {sids[i] for i in text_rows} - self._text_series:
                    self._db.execute("UPDATE series SET has_text = 1 WHERE id = ?", (sid,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO point VALUES (?,?,?,?,?,?,?)",
                    zip(
                        sids, good.source_time_ns.tolist(), kind.tolist(), values,
                        good.quality.tolist(), good.received_time_ns.tolist(), good.unit.tolist(),
                        strict=True,
                    ),
                )  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                # The new series ids were rolled back too: forget them.
                self._reload_series_ids()
                raise
            self._text_series.update(sids[i] for i in text_rows)

    def _ids_for(self, assets: np.ndarray, fields: np.ndarray) -> list[int]:
        ids = self._series_ids
        out: list[int] = []
        for key in zip(assets.tolist(), fields.tolist(), strict=True):
            sid = ids.get(key)
            if sid is None:
                # OR IGNORE + SELECT: another process writing the same file may have created
                # the series since this store was opened.
                self._db.execute("INSERT OR IGNORE INTO series (asset, field) VALUES (?, ?)", key)
                row = self._db.execute(
                    "SELECT id, has_text FROM series WHERE asset = ? AND field = ?", key
                ).fetchone()
                sid = ids[key] = int(row[0])
                if row[1]:
                    self._text_series.add(sid)
            out.append(sid)
        return out

    def _lookup_series(self, asset: str, field: str) -> int | None:
        """A series another process (the agent writing the same file) created after this store
        was opened: the id cache only knows the series seen at open or written here."""
        with self._reader() as db:
            row = db.execute(
                "SELECT id, has_text FROM series WHERE asset = ? AND field = ?", (asset, field)
            ).fetchone()
        if row is None:
            return None
        self._series_ids[(asset, field)] = int(row[0])
        if row[1]:
            self._text_series.add(int(row[0]))
        return int(row[0])

    def _series_id(self, asset: str, field: str) -> int | None:
        sid = self._series_ids.get((asset, field))
        return sid if sid is not None else self._lookup_series(asset, field)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads. For a file, one per thread: WAL lets readers run beside
        the writer, so a long series read by the API never holds up the forwarder's writes.
        ``:memory:`` has only the one connection (behind the lock)."""
        if self.path == ":memory:":
            with self._lock:
                yield self._db
            return
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
            db.execute("PRAGMA query_only=1")
            self._local.db = db
            with self._lock:
                self._readers.append(db)
        try:
            yield db
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc

    def _reload_series_ids(self) -> None:
        self._series_ids = {
            (a, f): sid for sid, a, f in self._db.execute("SELECT id, asset, field FROM series")
        }

    # -- reading -------------------------------------------------------------------------

    def series(
        self,
        asset: str,
        field: str,
        start_ns: int,
        end_ns: int,
        *,
        window_ns: int | None = None,
        aggregate: str = "mean",
    ) -> Series:
        """See :meth:`ingest.contracts.Store.series`. mean/min/max/sum/count of a numeric
        series are aggregated in SQL (a dashboard asking for a fortnight in 1-minute windows
        must not pull a million raw rows into Python); first/last, and text series, are
        downsampled in NumPy (``ingest.downsample``). Windows and quality are the same
        either way: epoch-aligned, worst quality per window."""
        start_ns, end_ns = int(start_ns), int(end_ns)
        if window_ns is not None and aggregate in _SQL_AGGREGATES:
            if int(window_ns) != window_ns or window_ns <= 0:
                raise ValueError(
                    f"window_ns {window_ns!r}: expected a positive integer of nanoseconds"
                )
            sid = self._series_id(asset, field) if start_ns < end_ns else None
            if sid is None:
                return Series(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.uint8))
            if sid not in self._text_series:
                got = self._sql_downsample(sid, start_ns, end_ns, int(window_ns), aggregate)
                if got is not None:
                    return got
        raw = self._raw_series(asset, field, start_ns, end_ns)
        if window_ns is None:
            return raw
        return downsample(raw, window_ns, aggregate)

    def _sql_downsample(
        self, sid: int, start_ns: int, end_ns: int, window_ns: int, aggregate: str
    ) -> Series | None:
        """Aggregate in SQLite; None if the series turns out to hold text."""
        # ((t % w) + w) % w: SQLite's % keeps the dividend's sign; windows floor, like InfluxQL.
        sql = (
            f"SELECT time_ns - ((time_ns % :w) + :w) % :w AS win, {_SQL_AGGREGATES[aggregate]}, "
            "MAX(quality), MAX(typeof(value) = 'text') FROM point "
            "WHERE series_id = :sid AND time_ns >= :start AND time_ns < :end "
            "GROUP BY win ORDER BY win"
        )
        params = {"w": window_ns, "sid": sid, "start": start_ns, "end": end_ns}
        with self._reader() as db:
            rows = db.execute(sql, params).fetchall()
        if any(r[3] for r in rows):
            self._text_series.add(sid)  # written by another process since we looked
            return None
        n = len(rows)
        return Series(
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            np.fromiter((r[1] for r in rows), dtype=np.float64, count=n),
            np.fromiter((r[2] for r in rows), dtype=np.uint8, count=n),
        )

    def _raw_series(self, asset: str, field: str, start_ns: int, end_ns: int) -> Series:
        sid = self._series_id(asset, field) if start_ns < end_ns else None
        if sid is None:
            return Series(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.uint8))
        sql = (
            "SELECT time_ns, value, quality FROM point "
            "WHERE series_id = ? AND time_ns >= ? AND time_ns < ? ORDER BY time_ns"
        )
        with self._reader() as db:
            if sid not in self._text_series:
                try:
                    rows = np.fromiter(db.execute(sql, (sid, start_ns, end_ns)), _NUMERIC_ROW)
                    return Series(
                        rows["time_ns"].copy(), rows["value"].copy(), rows["quality"].copy()
                    )
                except (ValueError, TypeError):
                    # Text written by another process since we looked: read as objects.
                    self._text_series.add(sid)
            fetched = db.execute(sql, (sid, start_ns, end_ns)).fetchall()
        n = len(fetched)
        time_ns = np.fromiter((r[0] for r in fetched), dtype=np.int64, count=n)
        values = np.empty(n, dtype=object)
        values[:] = [r[1] for r in fetched]
        quality = np.fromiter((r[2] for r in fetched), dtype=np.uint8, count=n)
        return Series(time_ns, values, quality)

    def readings(
        self, asset: str, field: str, start_ns: int, end_ns: int, *, limit: int | None = None
    ) -> ReadingBatch:
        """The raw readings of one series in ``[start_ns, end_ns)``, oldest first, at most
        ``limit`` of them, with their value types, quality, receive time and unit."""
        rows = self._raw_readings(asset, field, start_ns, end_ns, limit)
        return ReadingBatch.from_readings(_readings_of(rows, asset, field))

    def iter_readings(
        self,
        asset: str,
        field: str,
        start_ns: int,
        end_ns: int,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Reading]:
        """The readings :meth:`readings` returns, in the same order, read ``page_size`` at a
        time (one short query per page, see :mod:`ingest.paging`), so memory stays bounded
        and no read transaction is held open for a whole export. ``kilnworks export`` reads
        with this."""
        check_page_size(page_size)

        def read(start: int, end: int, limit: int | None) -> list[tuple]:
            return self._raw_readings(asset, field, start, end, limit)

        def pages() -> Iterator[Reading]:
            for rows in pages_by_time(read, start_ns, end_ns, page_size, time_of=_row_time):
                yield from _readings_of(rows, asset, field)

        return pages()

    def _raw_readings(
        self, asset: str, field: str, start_ns: int, end_ns: int, limit: int | None
    ) -> list[tuple]:
        """Rows ``(time_ns, kind, value, quality, received_ns, unit)`` ordered by time (one
        per time: a series' points are keyed by it), the first ``limit`` (None: all)."""
        sid = self._series_id(asset, field) if start_ns < end_ns else None
        if sid is None:
            return []
        with self._reader() as db:
            rows = db.execute(
                "SELECT time_ns, kind, value, quality, received_ns, unit FROM point "
                "WHERE series_id = ? AND time_ns >= ? AND time_ns < ? ORDER BY time_ns LIMIT ?",
                (sid, int(start_ns), int(end_ns), -1 if limit is None else int(limit)),
            ).fetchall()
        return rows

    def latest(self, asset: str) -> dict[str, Reading]:
        """See :meth:`ingest.contracts.Store.latest`."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT s.field, p.time_ns, p.kind, p.value, p.quality, p.received_ns, p.unit "
                "FROM series s JOIN point p ON p.series_id = s.id AND p.time_ns = "
                "(SELECT MAX(time_ns) FROM point WHERE series_id = s.id) WHERE s.asset = ?",
                (asset,),
            ).fetchall()
        return {
            field: Reading(asset, field, _typed(kind, value), Quality(q), t, recv, unit)
            for field, t, kind, value, q, recv, unit in rows
        }

    def list_series(self, asset_prefix: str = "") -> list[tuple[str, str]]:
        """See :meth:`ingest.contracts.Store.list_series`."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT asset, field FROM series WHERE substr(asset, 1, ?) = ? "
                "AND EXISTS (SELECT 1 FROM point WHERE series_id = series.id) "
                "ORDER BY asset, field",
                (len(asset_prefix), asset_prefix),
            ).fetchall()
        return [(a, f) for a, f in rows]

    def count(self) -> int:
        """Points held (tests and the demo's summary)."""
        with self._reader() as db:
            return int(db.execute("SELECT COUNT(*) FROM point").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
            self._db.close()


def _row_time(row: tuple) -> int:
    return row[0]


def _readings_of(rows: list[tuple], asset: str, field: str) -> Iterator[Reading]:
    for t, kind, value, q, recv, unit in rows:
        yield Reading(asset, field, _typed(kind, value), Quality(q), t, recv, unit)


def _typed(kind: int, value: object) -> float | int | bool | str:
    if kind == KIND_FLOAT:
        return float(value)  # type: ignore[arg-type]
    if kind == KIND_INT:
        return int(value)  # type: ignore[arg-type]
    if kind == KIND_BOOL:
        return bool(value)
    return str(value)
