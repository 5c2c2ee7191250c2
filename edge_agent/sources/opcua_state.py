"""Per-node high-water marks of the OPC UA source, kept in a small JSON file.

A mark is the source time (ns) of the newest value of a node that is durable in the spool. It
serves two purposes:

* after a reconnect *or a restart of the agent* (kill -9 included), HistoryRead asks the server
  for everything after the mark, so the gap is filled;
* values at or before the mark are duplicates (history overlapping the first notifications of a
  new subscription) and are dropped before they reach the spool.

The file is rewritten atomically (temp file + rename) at most every ``min_interval_s``: after a
crash the marks are at most that old, and the overlap HistoryRead then returns is de-duplicated
by the store (a point with the same series and time overwrites itself). No fsync: the file only
has to survive the agent dying, and the page cache survives that; after a power cut an older
mark costs a re-read, never a loss.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class Watermarks:
    """Node id -> newest durable source time in ns. Not thread-safe: owned by one source task."""

    def __init__(self, path: Path | None, *, min_interval_s: float = 0.5) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self.marks: dict[str, int] = {}
        self._dirty = False
        self._saved_at = 0.0
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.marks = {str(k): int(v) for k, v in data.get("marks", {}).items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                # A corrupt state file must not stop collection: start without marks (no
                # history fill for this restart) and say so.
                log.warning("%s: unreadable watermark file, starting without: %s", path, exc)

    def get(self, node_id: str) -> int | None:
        return self.marks.get(node_id)

    def advance(self, node_id: str, time_ns: int) -> None:
        if time_ns > self.marks.get(node_id, -1):
            self.marks[node_id] = time_ns
            self._dirty = True

    def maybe_save(self, *, force: bool = False) -> None:
        if self.path is None or not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < self.min_interval_s:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"marks": self.marks}), encoding="utf-8")
        os.replace(tmp, self.path)
        self._saved_at = now
        self._dirty = False
