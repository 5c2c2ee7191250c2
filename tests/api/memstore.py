"""A small in-memory telemetry store for API unit tests: a fake at the Store seam.

It follows ``ingest.contracts.Store`` (half-open windows, epoch-aligned downsampling, empty
results for unknown things) closely enough for the API; the real stores pass the contract suite
and the API's integration tests run against the embedded SQLite store as well.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from core.reading import Quality, Reading, ReadingBatch
from ingest.contracts import Series, StoreUnavailable, WriteResult


class MemoryStore:
    def __init__(self) -> None:
        self.points: dict[tuple[str, str], dict[int, Reading]] = defaultdict(dict)
        self.down = False
        self.closed = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("memory store switched off by the test")

    def write(self, batch: ReadingBatch) -> WriteResult:
        self._check()
        for r in batch.to_readings():
            self.points[(r.asset, r.field)][r.source_time_ns] = r
        return WriteResult(written=len(batch))

    def add(self, asset: str, field: str, times_ns, values, quality: int = 0) -> None:
        """Test helper: many values of one field."""
        for t, v in zip(times_ns, values, strict=True):
            if isinstance(v, np.generic):
                v = v.item()
            self.points[(asset, field)][int(t)] = Reading(
                asset, field, v, Quality(quality), int(t), int(t)
            )

    def series(self, asset, field, start_ns, end_ns, *, window_ns=None, aggregate="mean") -> Series:
        self._check()
        pts = sorted(
            (t, r) for t, r in self.points.get((asset, field), {}).items() if start_ns <= t < end_ns
        )
        if not pts:
            return Series(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint8))
        t = np.array([p[0] for p in pts], np.int64)
        is_text = isinstance(pts[0][1].value, str)
        vals = np.array([p[1].value for p in pts], dtype=object if is_text else np.float64)
        q = np.array([int(p[1].quality) for p in pts], np.uint8)
        if window_ns is None:
            return Series(t, vals, q)
        w = t // window_ns * window_ns
        starts, idx = np.unique(w, return_index=True)
        bounds = [*idx[1:], len(t)]
        out_v = []
        out_q = []
        for a, b in zip(idx, bounds, strict=True):
            chunk = vals[a:b]
            fn = {"mean": np.mean, "min": np.min, "max": np.max, "sum": np.sum,
                  "first": lambda c: c[0], "last": lambda c: c[-1], "count": len}[aggregate]  # fmt: skip
            out_v.append(fn(chunk))
            out_q.append(q[a:b].max())
        return Series(
            starts,
            np.array(out_v, dtype=object if is_text else np.float64),
            np.array(out_q, np.uint8),
        )

    def latest(self, asset: str) -> dict[str, Reading]:
        self._check()
        out = {}
        for (a, f), pts in self.points.items():
            if a == asset and pts:
                out[f] = pts[max(pts)]
        return out

    def list_series(self, asset_prefix: str = "") -> list[tuple[str, str]]:
        self._check()
        return sorted(k for k in self.points if k[0].startswith(asset_prefix))

    def close(self) -> None:
        self.closed = True
