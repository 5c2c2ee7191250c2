"""Simulated time: one clock per fleet, running ``speed`` times faster than the wall clock.

Every timestamp the simulators put on the wire (OPC UA source timestamps, MQTT ``ts`` fields,
Sparkplug metric timestamps) and into the ground truth is *simulated* UTC nanoseconds from this
clock, so a 30-hour firing at ``speed=1800`` takes one minute of wall time and still looks like
30 hours to the platform.

Assets never read the clock in a loop; they compute the simulated time of their next event and
``await clock.sleep_until(t_ns)``. That keeps every asset deterministic for a given seed: what
it does depends on simulated times and its own random generator, not on wall-clock jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class SimClock:
    """Maps simulated UTC nanoseconds to wall-clock time.

    ``start()`` pins simulated ``start_time_ns`` to the current wall instant; before that the
    clock stands still at ``start_time_ns``. ``monotonic`` is injectable for unit tests.
    """

    def __init__(
        self,
        start_time_ns: int,
        speed: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.start_time_ns = int(start_time_ns)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._wall0: float | None = None
        self.wall_start_ns: int | None = None  # wall-clock UTC ns when start_time_ns was pinned

    def start(self) -> None:
        self._wall0 = self._monotonic()
        self.wall_start_ns = time.time_ns()

    @property
    def started(self) -> bool:
        return self._wall0 is not None

    def now_ns(self) -> int:
        """The current simulated time (UTC ns)."""
        if self._wall0 is None:
            return self.start_time_ns
        elapsed = self._monotonic() - self._wall0
        return self.start_time_ns + int(elapsed * self.speed * 1e9)

    def wall_delay_s(self, t_ns: int) -> float:
        """Wall seconds until simulated time ``t_ns`` (negative when it is already past)."""
        return (t_ns - self.now_ns()) / 1e9 / self.speed

    async def sleep_until(self, t_ns: int, wake: asyncio.Event | None = None) -> bool:
        """Sleep until simulated ``t_ns``; return True when ``wake`` was set first.

        The caller clears ``wake``; an already-set event returns at once.
        """
        delay = self.wall_delay_s(t_ns)
        if wake is None:
            if delay > 0:
                await asyncio.sleep(delay)
            return False
        if wake.is_set():
            return True
        if delay <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)
        return wake.is_set()
