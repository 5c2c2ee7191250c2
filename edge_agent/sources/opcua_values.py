"""OPC UA DataValue -> Reading: timestamps, StatusCode -> Quality, Variant -> Python value.

Pure functions, used by the OPC UA source for subscription notifications and HistoryRead
results alike (so a gap filled from history yields exactly the readings the subscription would
have). No I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import ua

from core.reading import Quality, Reading, Value

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def datetime_to_ns(dt: datetime) -> int:
    """UTC datetime -> integer ns since the epoch, exactly (integer arithmetic: asyncua's
    datetimes carry microseconds; a float of seconds would round them)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # asyncua hands out naive UTC datetimes
    return ((dt - _EPOCH) // _US) * 1000


def ns_to_datetime(ns: int) -> datetime:
    """Integer ns -> aware UTC datetime (asyncua 2 compares aware datetimes), truncated to
    microseconds (floor, so a HistoryRead from it includes the instant itself)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def quality_of(status: ua.StatusCode | None) -> Quality:
    """OPC UA StatusCode severity (top two bits, Part 4 7.39) -> Quality."""
    if status is None:
        return Quality.GOOD
    severity = (int(status.value) >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


class UnsupportedValue(ValueError):
    """A variant the platform cannot store (arrays, structures, ints beyond 64 bits...).
    ``reason`` is the dead-letter key."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def python_value(raw: Any) -> Value:
    """A Variant's Python value as a reading value, or :class:`UnsupportedValue`."""
    if raw is None:
        raise UnsupportedValue("no_value", "the data value carries no value")
    if isinstance(raw, bool | float | str):
        return raw
    if isinstance(raw, int):
        if raw > INT64_MAX or raw < INT64_MIN:
            raise UnsupportedValue("out_of_range", f"integer {raw} does not fit in 64 bits")
        return raw
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or ""
    if isinstance(raw, datetime):
        return datetime_to_ns(raw)
    raise UnsupportedValue("wrong_type", f"value of type {type(raw).__name__} is not supported")


def time_of(dv: ua.DataValue, choice: str, received_ns: int) -> int:
    """The reading's time by the configured choice (source / server / receive); a missing
    source timestamp falls back to the server's, then to the receive time."""
    if choice == "source" and dv.SourceTimestamp is not None:
        return datetime_to_ns(dv.SourceTimestamp)
    if choice in ("source", "server") and dv.ServerTimestamp is not None:
        return datetime_to_ns(dv.ServerTimestamp)
    return received_ns


def source_time_or_none(dv: ua.DataValue) -> int | None:
    """The source timestamp in ns (what history fill and de-duplication key on), or None."""
    if dv.SourceTimestamp is not None:
        return datetime_to_ns(dv.SourceTimestamp)
    if dv.ServerTimestamp is not None:
        return datetime_to_ns(dv.ServerTimestamp)
    return None


def to_reading(
    dv: ua.DataValue,
    *,
    asset: str,
    field: str,
    unit: str,
    timestamp: str,
    received_ns: int,
) -> Reading:
    """Build the reading for one data value; raises :class:`UnsupportedValue`."""
    raw = dv.Value.Value if dv.Value is not None else None
    return Reading(
        asset,
        field,
        python_value(raw),
        quality_of(dv.StatusCode),
        time_of(dv, timestamp, received_ns),
        received_ns,
        unit,
    )
