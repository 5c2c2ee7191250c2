"""Per-asset OEE results kept in memory, so dashboard polling does not recompute them.

Used by :func:`api.services.oee.scope_oee` (the ``/oee`` route and the town overview). One
:class:`OeeCache` per app (``AppContext.oee_cache``), per process; bounded (LRU) and
thread-safe. What it holds and for how long (docs/api.md, "The OEE cache"):

* The key is everything a per-asset result depends on besides telemetry and metadata: the
  asset as the plant model defines it (its path names the enterprise, so one enterprise's entry
  can never answer for another's asset), the window, the bucket, the shift calendar's
  fingerprint and the settings the computation reads; plus the asset's *generation*.
* Metadata that feeds OEE (gradings, recorded firings) changes through
  :class:`api.metadata.store.MetadataStore`, which calls :meth:`OeeCache.invalidate` with the
  asset after every such write: the generation moves on, the asset's entries go, and a
  computation that was running meanwhile is not stored.
* Telemetry cannot announce itself (the edge agent writes to the store directly), so time
  decides: a window that ended at least ``late_s`` ago is *settled* and kept up to
  ``settled_s`` (0: until invalidated or evicted); any other window is *live* and kept
  ``live_s``. The caller may declare a result unsettled regardless (a shuttle kiln with a
  firing still open at the window's end).
* Concurrent misses on one key compute once; the others wait for that result.

Authorisation is not the cache's business: routes check the caller's scope before they ask.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")
Clock = Callable[[], int]  # integer UTC nanoseconds (the app's clock, api.context.Clock)

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the app started (exposed at ``/metrics``)."""

    hits: int  # answered from an entry
    misses: int  # computed (and stored unless invalidated meanwhile or not cacheable)
    waits: int  # answered by another request's computation of the same key
    invalidations: int  # invalidate() calls
    evictions: int  # entries dropped to stay within max_entries
    entries: int  # entries held now (expired ones included until looked up or evicted)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires_ns: int | None  # None: until invalidated or evicted


class OeeCache(Generic[V]):
    """LRU of computed values with live/settled lifetimes and per-asset invalidation."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_entries: int,
        live_s: float,
        late_s: float,
        settled_s: float,
    ) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self.live_ns = int(live_s * NS_PER_S)
        self.late_ns = int(late_s * NS_PER_S)
        self.settled_ns = int(settled_s * NS_PER_S)
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int, Hashable], _Entry[V]] = OrderedDict()
        self._running: dict[tuple[str, int, Hashable], Future[V]] = {}
        self._generation: dict[str, int] = {}
        self._hits = self._misses = self._waits = self._invalidations = self._evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def live_end(self, now_ns: int) -> int:
        """The end of a window that runs "until now": ``now_ns`` rounded down to ``live_s``,
        so requests within the same few seconds ask for the same window (and share entries).
        Unchanged when live windows are not cached."""
        if not self.enabled or self.live_ns <= 0:
            return now_ns
        return now_ns - now_ns % self.live_ns

    def settled(self, end_ns: int, now_ns: int) -> bool:
        """Whether a window ending at ``end_ns`` can no longer receive data (see module doc)."""
        return end_ns <= now_ns - self.late_ns

    def get_or_compute(
        self, asset: str, key: Hashable, compute: Callable[[int], tuple[V, bool]]
    ) -> V:
        """The value for ``(asset, key)``: from an entry, or ``compute(now_ns)``, which returns
        the value and whether it is settled (may be kept beyond ``live_s``). Exceptions of
        ``compute`` propagate (to waiters too) and are not stored."""
        if not self.enabled:
            return compute(self.clock())[0]
        with self._lock:
            now = self.clock()
            full = (asset, self._generation.get(asset, 0), key)
            entry = self._entries.get(full)
            if entry is not None:
                if entry.expires_ns is None or now < entry.expires_ns:
                    self._entries.move_to_end(full)
                    self._hits += 1
                    return entry.value
                del self._entries[full]
            running = self._running.get(full)
            if running is None:
                mine: Future[V] = Future()
                self._running[full] = mine
                self._misses += 1
            else:
                self._waits += 1
        if running is not None:
            return running.result()
        try:
            value, settled = compute(now)
        except BaseException as exc:
            with self._lock:
                self._running.pop(full, None)
            mine.set_exception(exc)
            raise
        with self._lock:
            self._running.pop(full, None)
            expires = self._expiry(now, settled)
            current = self._generation.get(asset, 0) == full[1]
            if current and (expires is None or expires > now):
                self._entries[full] = _Entry(value, expires)
                self._entries.move_to_end(full)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
                    self._evictions += 1
        mine.set_result(value)
        return value

    def _expiry(self, computed_ns: int, settled: bool) -> int | None:
        if settled:
            return None if self.settled_ns <= 0 else computed_ns + self.settled_ns
        return computed_ns + self.live_ns  # live_s = 0: expired at once, so not stored

    def invalidate(self, asset: str) -> None:
        """Forget everything computed for ``asset`` (its metadata changed)."""
        with self._lock:
            self._invalidations += 1
            self._generation[asset] = self._generation.get(asset, 0) + 1
            for k in [k for k in self._entries if k[0] == asset]:
                del self._entries[k]

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits,
                self._misses,
                self._waits,
                self._invalidations,
                self._evictions,
                len(self._entries),
            )
