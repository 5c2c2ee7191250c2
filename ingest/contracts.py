"""The seams of the store side: what a sink and a store promise. Read this before changing one.

* A **sink** takes batches of readings for delivery (the spool in front of InfluxDB is one).
* A **store** holds readings and answers range queries as NumPy arrays (InfluxDB v1, the
  embedded SQLite store). Every store passes the same contract tests
  (``tests/ingest/test_store_contract.py``).

Both are opened by URL (``ingest.stores.open_store``):

* ``influxdb://[user:password@]host:port/database[?token=...]``: v1 HTTP API (/write, /query)
* ``influxdb2://host:port/?org=...&bucket=...&token=...``: v2 write API (write only)
* ``sqlite:///path/to/file.db``: the embedded store
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from core.reading import Reading, ReadingBatch


class Series(NamedTuple):
    """One field of one asset over time, sorted by time.

    ``values`` is float64 for numeric fields (bools as 0/1) and an object array for text
    fields. ``quality`` is uint8 (core.reading.Quality); for downsampled series it is the worst
    quality in each window. ``time_ns`` is int64 UTC nanoseconds (window start when
    downsampled).
    """

    time_ns: np.ndarray
    values: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reading a sink or store refused, with the reason (kept in a dead-letter table)."""

    reading: Reading
    reason: str


@dataclass(slots=True)
class WriteResult:
    """What happened to a batch: how many points were written and which were rejected."""

    written: int = 0
    rejected: list[Rejected] = field(default_factory=list)


class StoreUnavailable(ConnectionError):
    """The store cannot be reached now (refused, timeout, 5xx). Retry later; nothing was lost."""


AGGREGATES = ("mean", "min", "max", "first", "last", "count", "sum")


@runtime_checkable
class Sink(Protocol):
    """Takes readings for delivery.

    ``put`` is called by sources, from any thread, possibly concurrently. It returns once the
    batch is *accepted*: for a durable sink (the spool) that means on disk and fsynced, so a
    source may acknowledge the message to its broker/server afterwards. ``put`` raises
    :class:`core.reading.InvalidReading` never: invalid readings come back in the result's
    ``rejected`` list, the valid ones are accepted. It may block when the sink is full,
    according to its stated policy. ``close`` is called once, after the last ``put`` returned.
    """

    def put(self, batch: ReadingBatch) -> WriteResult: ...

    def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Holds readings and answers the queries analytics and the API need.

    ``write`` writes a batch now and returns what was written and rejected; it raises
    :class:`StoreUnavailable` when the store cannot be reached (the caller retries; a write is
    idempotent: a point with the same asset, field and source time overwrites the old one).
    Reads raise :class:`StoreUnavailable` likewise; asking for something that does not exist
    is not an error (an empty Series / dict / list).
    """

    def write(self, batch: ReadingBatch) -> WriteResult: ...

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
        """Readings with ``start_ns <= source_time_ns < end_ns``; downsampled into windows
        aligned to multiples of ``window_ns`` (since the epoch) when it is given, with one of
        :data:`AGGREGATES` (empty windows are left out)."""
        ...

    def latest(self, asset: str) -> dict[str, Reading]:
        """The most recent reading of every field of the asset, by field name."""
        ...

    def list_series(self, asset_prefix: str = "") -> list[tuple[str, str]]:
        """All (asset, field) pairs held, sorted, optionally those whose asset path starts
        with ``asset_prefix`` (e.g. ``"xinghai/"``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RawReader(Protocol):
    """A store that gives readings back exactly as written (value type, quality, receive time,
    unit): ``InfluxV1Store`` and ``SQLiteStore``. ``kilnworks export`` reads with it.

    ``iter_readings`` yields the readings of one series (asset and field) with
    ``start_ns <= source_time_ns < end_ns``, oldest first; points of the series that share a
    time (InfluxDB keeps one per ``unit`` tag) ordered by unit, so that any two reads of the
    same data agree. It reads ``page_size`` at a time (``ingest.paging``): memory and each
    query stay bounded however long the range, and nothing is skipped or repeated where one
    page ends and the next begins. ``page_size`` is an int >= 1 (else TypeError/ValueError,
    raised at the call); it changes the number of queries, never the readings.
    """

    def iter_readings(
        self,
        asset: str,
        field: str,
        start_ns: int,
        end_ns: int,
        *,
        page_size: int = ...,
    ) -> Iterator[Reading]: ...
