"""Fakes at the seams (unit tests only): an Output that records, a Spool that keeps batches in
memory with the real spool's API subset the runtime uses."""

from __future__ import annotations

import threading

from core.reading import Reading, ReadingBatch
from ingest.contracts import WriteResult


class RecordingOutput:
    """Implements edge_agent.source.Output; keeps everything it is given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.readings: list[Reading] = []
        self.rejects: list[tuple[str, str, str, object]] = []
        self.fail_next = 0  # make accept raise (spool full) this many times

    def accept(self, source: str, readings: list[Reading]) -> None:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                raise OSError("spool unavailable (test)")
            self.readings.extend(readings)

    def reject(self, source: str, reason: str, detail: str, raw: object = None) -> None:
        with self.lock:
            self.rejects.append((source, reason, detail, raw))

    def seen(self, source: str, asset: str, time_ns: int) -> None:
        pass

    def by_field(self) -> dict[str, list[Reading]]:
        with self.lock:
            out: dict[str, list[Reading]] = {}
            for r in self.readings:
                out.setdefault(r.field, []).append(r)
            return out

    def count(self) -> int:
        with self.lock:
            return len(self.readings)


class MemorySpool:
    """The spool API the runtime uses, in memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[ReadingBatch] = []
        self.dead: list[dict] = []
        self.closed = False

    def put(self, batch: ReadingBatch) -> WriteResult:
        with self.lock:
            self.batches.append(batch)
        return WriteResult(written=len(batch))

    def dead_letter(self, source, reason, detail="", raw=None, reading=None) -> None:
        with self.lock:
            self.dead.append(
                {
                    "source": source,
                    "reason": reason,
                    "detail": detail,
                    "raw": raw,
                    "reading": reading,
                }
            )

    def depth(self) -> int:
        with self.lock:
            return sum(len(b) for b in self.batches)

    def oldest_age_ns(self, now_ns: int) -> int | None:
        return None

    def stats(self) -> dict:
        return {"accepted": self.depth()}

    def readings(self) -> list[Reading]:
        with self.lock:
            return [r for b in self.batches for r in b.to_readings()]

    def close(self) -> None:
        self.closed = True
