"""Input validation at the door: which readings may enter the spool, and why the others may not.

The agent runtime calls :meth:`Guard.split` on every batch a source hands to
``Output.accept``. A reading is refused (and then dead-lettered by the caller, never dropped
silently) when:

* ``not_finite``   - the value is NaN or +/-inf (a float that cannot be stored faithfully);
* ``wrong_type``   - the value is not float/int/bool/str, or a time is not integer ns;
* ``bad_reading``  - the asset path or field name is malformed;
* ``clock_skew_future`` - the source time is more than ``max_future_s`` ahead of the agent's
  clock (a PLC whose clock jumped; storing it would put points in next year);
* ``clock_skew_past``   - more than ``max_past_s`` behind (a clock reset to 1970 or 2000).

Reasons are short stable keys: they label the ``kilnworks_agent_dead_letters_total`` metric and
the spool's dead-letter rows. The guard is pure and thread-safe (no state but its limits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from core.reading import Reading
from edge_agent.config import GuardConfig

NS = 1_000_000_000


class Refusal(NamedTuple):
    """A reading the guard would not let in, with the reason key and a sentence for the log."""

    reading: Reading
    reason: str
    detail: str


class Guard:
    """Checks readings against the agent's limits (see module docstring)."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        config = config or GuardConfig()
        self.max_future_ns = int(config.max_future_s * NS)
        self.max_past_ns = int(config.max_past_s * NS)

    def check(self, r: Reading, now_ns: int) -> Refusal | None:
        """The refusal for one reading, or None when it may be stored."""
        v = r.value
        if isinstance(v, float):
            if not math.isfinite(v):
                return Refusal(r, "not_finite", f"value {v!r} is not a finite number")
        elif not isinstance(v, bool | int | str):
            return Refusal(r, "wrong_type", f"value of type {type(v).__name__} is not supported")
        t = r.source_time_ns
        if not isinstance(t, int) or isinstance(t, bool):
            return Refusal(r, "wrong_type", f"source time {t!r} is not integer nanoseconds")
        if not isinstance(r.received_time_ns, int) or isinstance(r.received_time_ns, bool):
            return Refusal(
                r, "wrong_type", f"receive time {r.received_time_ns!r} is not integer ns"
            )
        if not r.field or not isinstance(r.field, str):
            return Refusal(r, "bad_reading", "empty field name")
        parts = r.asset.split("/") if isinstance(r.asset, str) else []
        if len(parts) != 4 or not all(parts):
            return Refusal(
                r, "bad_reading", f"asset path {r.asset!r} is not enterprise/site/line/asset"
            )
        if self.max_future_ns and t - now_ns > self.max_future_ns:
            return Refusal(
                r,
                "clock_skew_future",
                f"source time is {(t - now_ns) / NS:.0f} s ahead of the agent clock "
                f"(limit {self.max_future_ns / NS:.0f} s)",
            )
        if self.max_past_ns and now_ns - t > self.max_past_ns:
            return Refusal(
                r,
                "clock_skew_past",
                f"source time is {(now_ns - t) / NS:.0f} s behind the agent clock "
                f"(limit {self.max_past_ns / NS:.0f} s)",
            )
        return None

    def split(
        self, readings: Sequence[Reading], now_ns: int
    ) -> tuple[list[Reading], list[Refusal]]:
        """Partition a batch into (readings to store, refusals), keeping the batch order."""
        good: list[Reading] = []
        bad: list[Refusal] = []
        check = self.check
        for r in readings:
            refusal = check(r, now_ns)
            if refusal is None:
                good.append(r)
            else:
                bad.append(refusal)
        return good, bad
