"""The source seam: what every collector (OPC UA, MQTT JSON, Sparkplug B) promises the agent.

A source turns protocol messages into :class:`core.reading.Reading` objects and hands them to
an :class:`Output`. It never buffers, retries delivery or writes to a store itself: delivery
guarantees live in one place (the spool behind the Output), as in Telegraf's running output.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.reading import Reading


@runtime_checkable
class Output(Protocol):
    """Where a source delivers what it read. Implemented by the agent runtime.

    Both methods are thread-safe and may block (paho's network thread calls them directly; an
    asyncio source calls them through ``asyncio.to_thread`` so its event loop never waits on
    the disk).
    """

    def accept(self, source: str, readings: list[Reading]) -> None:
        """Check each reading (NaN/inf, types, timestamps too far in the future or past),
        dead-letter and count the bad ones with their reason, and make the good ones durable
        in the spool. Returns only when they are durable: a source acknowledges a message to
        its broker or server after this returns, never before. Raises only if the spool itself
        cannot take them (disk full with policy ``reject``): then the source must not ack."""
        ...

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None = None) -> None:
        """Record input that could not become a reading (malformed JSON, unknown topic, wrong
        type, value outside the EURange...). ``reason`` is a short stable key used as a metric
        label (``malformed_json``, ``unknown_topic``, ``wrong_type``, ``out_of_range``...);
        ``detail`` is for the log and the dead-letter table."""
        ...

    def seen(self, source: str, asset: str, time_ns: int) -> None:
        """Note that an asset was heard from (for the last-seen metric), even without data."""
        ...


@runtime_checkable
class Source(Protocol):
    """A collector. ``name`` is unique within an agent (from its config section)."""

    name: str

    async def run(self, output: Output) -> None:
        """Collect until cancelled. Connection loss is not an exception: the source reconnects
        by itself with backoff (re-creating sessions *and* subscriptions), counting reconnects.
        Cancellation closes connections cleanly. An exception escaping ``run`` is a bug or a
        configuration the source cannot work with; the agent logs it and restarts the source
        after a backoff."""
        ...

    def status(self) -> dict[str, object]:
        """A small JSON-able health summary (connected, reconnects, last message time...)."""
        ...
