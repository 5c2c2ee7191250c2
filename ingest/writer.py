"""The running sink: drains a buffer (the durable spool, or memory) into a store in batches.

The one place where batching, retrying and dead-lettering live (Telegraf's "running output"):
sources and stores never retry on their own.

* :class:`Forwarder` — a thread that takes the oldest readings from a :class:`Buffer`
  (``ingest.spool.Spool``) when ``batch_size`` are waiting or ``flush_interval_s`` has passed
  since the last delivery, writes them with ``store.write``, and *acks only after the store
  confirmed*. So a crash between write and ack replays the batch, which is harmless: a point
  with the same asset, field and source time overwrites itself (idempotent stores).
* :class:`StoreUnavailable` → retry the same batch after an exponential backoff with jitter
  (``min(max_backoff_s, initial_backoff_s * 2**attempt)``, shortened at random by up to
  ``jitter`` of itself so that a workshop of agents does not hammer a recovering InfluxDB in
  step).
* The store's ``rejected`` readings go to the buffer's dead letters with the store's reason;
  the rest of the batch counts as delivered.
* Any other exception from ``store.write`` is a bug or a refusal the store could not pin on
  single readings. The batch is retried like an outage; after ``max_poison_attempts``
  consecutive failures of the same batch it is dead-lettered whole (reason ``store error``) so
  one poison batch cannot stop delivery for good.
* :class:`BatchingWriter` — the same thread over a bounded in-memory buffer, for callers that
  do not need durability (the demo, CSV import into a local store).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from core.reading import Reading, ReadingBatch
from ingest.batch_check import check_batch
from ingest.contracts import Rejected, Store, StoreUnavailable, WriteResult

log = logging.getLogger(__name__)


class Buffer(Protocol):
    """What the forwarder drains: ``ingest.spool.Spool`` or :class:`MemoryBuffer`."""

    def put(self, batch: ReadingBatch) -> WriteResult: ...

    def peek(self, max_rows: int, after_id: int = 0) -> tuple[int, ReadingBatch]: ...

    def ack(self, upto_id: int) -> int: ...

    def depth(self) -> int: ...

    def wait_for(self, min_readings: int, timeout_s: float) -> int: ...

    def wake(self) -> None: ...

    def dead_letter(
        self,
        source: str,
        reason: str,
        detail: str = "",
        raw: bytes | str | None = None,
        reading: Reading | None = None,
    ) -> None: ...

    def close(self) -> None: ...


class Forwarder:
    """Drains ``buffer`` into ``store`` on a thread of its own (see the module docstring).

    Lifecycle: ``start()`` once; ``flush()`` any time; ``stop(drain=...)`` once. ``clock``
    (monotonic seconds), ``sleep`` (seconds; defaults to an interruptible wait) and ``rng``
    are injectable for tests. The forwarder does not close the buffer or the store.
    """

    def __init__(
        self,
        buffer: Buffer,
        store: Store,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        jitter: float = 0.2,
        max_poison_attempts: int = 5,
        in_flight: int = 2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        name: str = "forwarder",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: expected at least 1")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter {jitter}: expected a fraction in [0, 1]")
        self.buffer = buffer
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter = jitter
        self.max_poison_attempts = max_poison_attempts
        self.in_flight = max(1, in_flight)
        self.name = name
        self._clock = clock
        self._sleep = sleep or self._interruptible_sleep
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._flush_wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempt = 0  # consecutive failures of the batch at the head
        # (upto_id, batch, write) of writes started and not yet acked, oldest first
        self._pending: deque[tuple[int, ReadingBatch, Future[WriteResult]]] = deque()
        self._last_delivery = clock()
        self.counters = {
            "forwarded": 0, "batches": 0, "store_rejected": 0, "store_unavailable": 0,
            "store_errors": 0, "poison_dead_lettered": 0,
        }  # fmt: skip
        self.last_error: str | None = None
        self.backoff_s = 0.0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Deliver everything waiting now, without waiting for a full batch or the interval.
        Returns True once the buffer is empty, False after ``timeout_s`` (store down...)."""
        deadline = time.monotonic() + timeout_s
        while self.buffer.depth() > 0:
            if self._thread is None or not self._thread.is_alive():
                return False
            self._flush_wanted.set()
            self.buffer.wake()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.buffer.wait_for(1 << 62, min(0.05, remaining))
        return True

    def stop(self, drain: bool = True, timeout_s: float = 30.0) -> bool:
        """Stop the thread. With ``drain``, first try to deliver what is waiting (for up to
        ``timeout_s``); what is not delivered stays in a durable spool for the next start.
        Returns True if the buffer was empty when the thread stopped."""
        if drain:
            self.flush(timeout_s)
        self._stopping.set()
        self.buffer.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.buffer.depth() == 0

    def stats(self) -> dict:
        """Counters, the current backoff and the last store error (for health/metrics)."""
        return {**self.counters, "backoff_s": self.backoff_s, "last_error": self.last_error}

    # -- the loop ------------------------------------------------------------------------

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _due(self, depth: int) -> bool:
        if depth == 0:
            return False
        if depth >= self.batch_size or self._flush_wanted.is_set() or self._stopping.is_set():
            return True
        return self._clock() - self._last_delivery >= self.flush_interval_s

    def _run(self) -> None:
        # Up to ``in_flight`` writes run at once on a small pool while this thread peeks and
        # decodes the next batch, so the store's time and ours overlap. Acks stay in order:
        # a batch is acked only when it and every older one were confirmed.
        pool = None
        if self.in_flight > 1:
            pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix=f"{self.name}-write")
        try:
            while not self._stopping.is_set():
                try:
                    if not self._pending:
                        depth = self.buffer.depth()
                        if not self._due(depth):
                            wait = self.flush_interval_s - (self._clock() - self._last_delivery)
                            self.buffer.wait_for(self.batch_size, max(0.001, min(wait, 1.0)))
                            if depth == 0:
                                # The interval starts with the first reading, so a lone
                                # reading is sent one interval after it arrived.
                                self._last_delivery = self._clock()
                            continue
                    self._dispatch(pool)
                    if self._pending:
                        self._complete_oldest()
                except Exception:  # the thread must outlive any one failure
                    log.exception("%s: unexpected error; retrying", self.name)
                    self._abandon_pending()
                    self._sleep(self.initial_backoff_s)
            while self._pending:  # stopping: settle what is in flight (ack what succeeded)
                self._complete_oldest(retry=False)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        log.debug("%s stopped", self.name)

    def _dispatch(self, pool: ThreadPoolExecutor | None) -> None:
        """Start writes of the next batches, up to ``in_flight`` at once."""
        while len(self._pending) < self.in_flight:
            in_flight = sum(len(p[1]) for p in self._pending)
            if self._pending and not self._due(self.buffer.depth() - in_flight):
                return
            after = self._pending[-1][0] if self._pending else 0
            upto, batch = self.buffer.peek(self.batch_size, after_id=after)
            if len(batch) == 0:
                return
            future: Future[WriteResult] = Future()
            if pool is None:
                try:
                    future.set_result(self.store.write(batch))
                except Exception as exc:  # settled in _complete_oldest
                    future.set_exception(exc)
            else:
                future = pool.submit(self.store.write, batch)
            self._pending.append((upto, batch, future))

    def _complete_oldest(self, retry: bool = True) -> None:
        upto, batch, future = self._pending[0]
        try:
            result = future.result()
        except Exception as exc:  # every failure keeps the readings (see module doc)
            # Later writes may have succeeded; they are re-sent after the retry (harmless:
            # writes are idempotent) because acks must stay in order.
            self._abandon_pending()
            if retry:
                self._write_failed(exc, upto, batch)
            return
        self._pending.popleft()
        self._delivered(upto, batch, result)

    def _abandon_pending(self) -> None:
        for _, _, future in self._pending:
            with contextlib.suppress(Exception):
                future.result()
        self._pending.clear()

    def deliver_once(self) -> int:
        """Write the oldest batch to the store once (synchronously); ack it if the store
        confirmed. Returns readings delivered (0 after a failed attempt, which sleeps a
        backoff). For tests and tools, on a forwarder whose thread is not started."""
        upto, batch = self.buffer.peek(self.batch_size)
        if len(batch) == 0:
            self._flush_wanted.clear()
            return 0
        try:
            result = self.store.write(batch)
        except Exception as exc:  # every failure keeps the readings (see module doc)
            self._write_failed(exc, upto, batch)
            return 0
        return self._delivered(upto, batch, result)

    def _write_failed(self, exc: Exception, upto: int, batch: ReadingBatch) -> None:
        if isinstance(exc, StoreUnavailable):
            self.counters["store_unavailable"] += 1
            self._failed(f"store unavailable: {exc}", len(batch))
            return
        self.counters["store_errors"] += 1
        log.error("%s: store.write raised on %d readings", self.name, len(batch), exc_info=exc)
        if self._attempt + 1 >= self.max_poison_attempts:
            self._dead_letter_batch(batch, f"{type(exc).__name__}: {exc}")
            self.buffer.ack(upto)
            self._attempt = 0
            return
        self._failed(f"store error: {type(exc).__name__}: {exc}", len(batch))

    def _delivered(self, upto: int, batch: ReadingBatch, result: WriteResult) -> int:
        for item in result.rejected:
            self.buffer.dead_letter(
                self.name, item.reason, "refused by the store", None, item.reading
            )
        self.counters["store_rejected"] += len(result.rejected)
        self.buffer.ack(upto)
        delivered = len(batch) - len(result.rejected)
        self.counters["forwarded"] += delivered
        self.counters["batches"] += 1
        if self._attempt:
            log.info("%s: store is back after %d failed attempts", self.name, self._attempt)
        self._attempt = 0
        self.backoff_s = 0.0
        self.last_error = None
        self._last_delivery = self._clock()
        if self.buffer.depth() == 0:
            self._flush_wanted.clear()
        return delivered

    def next_backoff_s(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, capped, jittered."""
        delay = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return delay * (1.0 - self.jitter * self._rng.random())

    def _failed(self, error: str, n: int) -> None:
        self._attempt += 1
        self.last_error = error
        self.backoff_s = self.next_backoff_s(self._attempt)
        log.warning(
            "%s: %s; %d readings kept, retry %d in %.2f s",
            self.name, error, n, self._attempt, self.backoff_s,
        )  # fmt: skip
        self._sleep(self.backoff_s)

    def _dead_letter_batch(self, batch: ReadingBatch, error: str) -> None:
        log.error(
            "%s: giving up on %d readings after %d store errors: %s",
            self.name, len(batch), self.max_poison_attempts, error,
        )  # fmt: skip
        for reading in batch.to_readings():
            self.buffer.dead_letter(self.name, "store error", error, None, reading)
        self.counters["poison_dead_lettered"] += len(batch)


class MemoryBuffer:
    """A bounded in-memory FIFO with the spool's draining API; drops the oldest when full.

    Not durable: what it holds is lost with the process. Dead letters are kept in a bounded
    deque (``dead_letters()``) and logged.
    """

    def __init__(self, max_readings: int = 1_000_000, max_dead_letters: int = 10_000) -> None:
        self.max_readings = max_readings
        self._items: deque[tuple[int, ReadingBatch]] = deque()
        self._next_id = 1
        self._depth = 0
        self._changed = threading.Condition()
        self._dead: deque[dict] = deque(maxlen=max_dead_letters)
        self.counters = {"accepted": 0, "forwarded": 0, "rejected_invalid": 0, "dropped": 0}

    def put(self, batch: ReadingBatch) -> WriteResult:
        good, rejected = check_batch(batch)
        for item in rejected:
            self.dead_letter("buffer", item.reason, reading=item.reading)
        with self._changed:
            self.counters["rejected_invalid"] += len(rejected)
            if len(good):
                self._items.append((self._next_id, good))
                self._next_id += 1
                self._depth += len(good)
                self.counters["accepted"] += len(good)
            while self._depth > self.max_readings and len(self._items) > 1:
                _, old = self._items.popleft()
                self._depth -= len(old)
                self.counters["dropped"] += len(old)
                log.warning("memory buffer full: dropped %d oldest readings", len(old))
            self._changed.notify_all()
        return WriteResult(written=len(good), rejected=list(rejected))

    def peek(self, max_rows: int, after_id: int = 0) -> tuple[int, ReadingBatch]:
        with self._changed:
            taken, upto, batches = 0, 0, []
            for item_id, batch in self._items:
                if item_id <= after_id:
                    continue
                if batches and taken + len(batch) > max_rows:
                    break
                batches.append(batch)
                taken += len(batch)
                upto = item_id
        if not batches:
            return 0, ReadingBatch.empty()
        return upto, batches[0] if len(batches) == 1 else ReadingBatch.concat(batches)

    def ack(self, upto_id: int) -> int:
        removed = 0
        with self._changed:
            while self._items and self._items[0][0] <= upto_id:
                removed += len(self._items.popleft()[1])
            self._depth -= removed
            self.counters["forwarded"] += removed
            self._changed.notify_all()
        return removed

    def depth(self) -> int:
        return self._depth

    def wait_for(self, min_readings: int, timeout_s: float) -> int:
        with self._changed:
            if self._depth < min_readings:
                self._changed.wait(timeout_s)
            return self._depth

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def dead_letter(
        self,
        source: str,
        reason: str,
        detail: str = "",
        raw: bytes | str | None = None,
        reading: Reading | None = None,
    ) -> None:
        log.warning("dead letter from %s: %s %s %s", source, reason, detail, reading or "")
        self._dead.append(
            {"source": source, "reason": reason, "detail": detail, "raw": raw, "reading": reading}
        )

    def dead_letters(self, limit: int = 100) -> list[dict]:
        return list(self._dead)[-limit:][::-1]

    def close(self) -> None:
        pass


class BatchingWriter:
    """A non-durable sink: ``put`` returns at once, a :class:`Forwarder` writes in batches.

    For the demo and tools that write to a local store; an edge agent uses the spool.
    ``close()`` flushes (for up to ``close_timeout_s``) and stops the thread; it does not close
    the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_buffered: int = 1_000_000,
        close_timeout_s: float = 30.0,
        **forwarder_options: object,
    ) -> None:
        self.buffer = MemoryBuffer(max_buffered)
        self.forwarder = Forwarder(self.buffer, store, name="batching-writer", **forwarder_options)  # type: ignore[arg-type]
        self.close_timeout_s = close_timeout_s
        self.forwarder.start()

    def put(self, batch: ReadingBatch) -> WriteResult:
        return self.buffer.put(batch)

    def flush(self, timeout_s: float = 30.0) -> bool:
        return self.forwarder.flush(timeout_s)

    def dead_letters(self, limit: int = 100) -> list[dict]:
        return self.buffer.dead_letters(limit)

    def close(self) -> None:
        if not self.forwarder.stop(drain=True, timeout_s=self.close_timeout_s):
            log.error("batching writer closed with %d readings undelivered", self.buffer.depth())


__all__ = ["BatchingWriter", "Buffer", "Forwarder", "MemoryBuffer", "Rejected"]
