"""The one reading type for everything the edge collects, and its columnar batch form.

A :class:`Reading` is one value of one field of one asset at one instant, as the source said it:

* ``asset`` is the ISA-95 path ``enterprise/site/line/asset`` (slash-separated, four parts),
  e.g. ``xinghai/plant-1/firing-shop/kiln-2``;
* ``field`` names the quantity with its unit, e.g. ``zone3_tc2_temperature_c``,
  ``gas_flow_m3_h``, ``cycle_count``;
* ``value`` is a float, int, bool or str;
* ``quality`` is the source's verdict (OPC UA StatusCode class, Sparkplug ``is_null``...);
* ``source_time_ns`` is when the value was true at the source, integer UTC nanoseconds;
* ``received_time_ns`` is when the edge received it, integer UTC nanoseconds;
* ``unit`` optionally repeats the engineering unit as text (``"°C"``, ``"m3/h"``).

Time is integer nanoseconds everywhere: a float64 of "seconds since 1970" only resolves about
0.2 µs today and silently rounds, so two samples 100 ns apart would collide.

:class:`ReadingBatch` is the same data as NumPy columns for the bulk paths (line-protocol
encoding, the spool, CSV import). ``ReadingBatch.from_readings`` and ``.to_readings`` convert
both ways without loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

Value = float | int | bool | str

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Quality(IntEnum):
    """Source quality, ordered so that ``max()`` of two qualities is the worse one."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class AssetPath(NamedTuple):
    """ISA-95 style location of an asset: enterprise / site / line / asset id."""

    enterprise: str
    site: str
    line: str
    asset: str

    @classmethod
    def parse(cls, path: str) -> AssetPath:
        parts = path.split("/")
        if len(parts) != 4 or not all(parts):
            raise ValueError(
                f"asset path {path!r}: expected enterprise/site/line/asset (four non-empty parts)"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return "/".join(self)


class Reading(NamedTuple):
    """One value of one field of one asset at one instant (see module docstring)."""

    asset: str
    field: str
    value: Value
    quality: Quality
    source_time_ns: int
    received_time_ns: int
    unit: str = ""

    @property
    def path(self) -> AssetPath:
        return AssetPath.parse(self.asset)


def now_ns() -> int:
    """Current UTC time in integer nanoseconds."""
    return time.time_ns()


class InvalidReading(ValueError):
    """A reading that must not be stored; the message names the reading and the reason."""

    def __init__(self, reading: Reading | None, reason: str) -> None:
        self.reading = reading
        self.reason = reason
        where = f"{reading.asset} {reading.field} @ {reading.source_time_ns}" if reading else "?"
        super().__init__(f"invalid reading ({where}): {reason}")


def check_reading(reading: Reading) -> None:
    """Raise :class:`InvalidReading` if the reading cannot be stored faithfully."""
    if not reading.field:
        raise InvalidReading(reading, "empty field name")
    try:
        AssetPath.parse(reading.asset)
    except ValueError as exc:
        raise InvalidReading(reading, str(exc)) from None
    value = reading.value
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidReading(reading, f"value {value!r} is not a finite number")
    if not isinstance(value, bool | int | float | str):
        raise InvalidReading(reading, f"value of type {type(value).__name__} is not supported")
    if not isinstance(reading.source_time_ns, int) or isinstance(reading.source_time_ns, bool):
        raise InvalidReading(reading, "source_time_ns must be an integer of nanoseconds")
    # Stores keep 64-bit integers (InfluxDB's int64 fields and timestamps, NumPy columns).
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        raise InvalidReading(reading, f"integer {value} does not fit in 64 bits")
    if not INT64_MIN <= reading.source_time_ns <= INT64_MAX:
        raise InvalidReading(reading, "source_time_ns does not fit in 64 bits")


# Kinds of value in a batch; a column per kind keeps floats in a float64 array (the hot path)
# while ints keep all 64 bits and strings stay strings.
KIND_FLOAT, KIND_INT, KIND_BOOL, KIND_STR = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings as NumPy columns, all of the same length ``n``.

    ``kind[i]`` says which value column holds reading ``i``'s value: ``number`` (float64, for
    KIND_FLOAT and KIND_BOOL as 0.0/1.0), ``integer`` (int64, for KIND_INT) or ``text``
    (object array of str, for KIND_STR). The unused columns hold 0 / "" at that index.
    """

    asset: np.ndarray  # object (str)
    field: np.ndarray  # object (str)
    kind: np.ndarray  # uint8, KIND_*
    number: np.ndarray  # float64
    integer: np.ndarray  # int64
    text: np.ndarray  # object (str)
    quality: np.ndarray  # uint8 (Quality)
    source_time_ns: np.ndarray  # int64
    received_time_ns: np.ndarray  # int64
    unit: np.ndarray  # object (str)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls.from_readings(())

    @classmethod
    def from_floats(
        cls,
        asset: str | Sequence[str] | np.ndarray,
        field: str | Sequence[str] | np.ndarray,
        values: np.ndarray,
        source_time_ns: np.ndarray,
        *,
        quality: np.ndarray | int = Quality.GOOD,
        received_time_ns: np.ndarray | int | None = None,
        unit: str = "",
    ) -> ReadingBatch:
        """Build a batch of float readings directly from arrays (the fast bulk path)."""
        number = np.ascontiguousarray(values, dtype=np.float64)
        n = number.shape[0]

        def column(x: object) -> np.ndarray:
            if isinstance(x, str):
                out = np.empty(n, dtype=object)
                out[:] = x
                return out
            return np.asarray(x, dtype=object)

        recv = now_ns() if received_time_ns is None else received_time_ns
        return cls(
            asset=column(asset),
            field=column(field),
            kind=np.zeros(n, dtype=np.uint8),
            number=number,
            integer=np.zeros(n, dtype=np.int64),
            text=column(""),
            quality=np.broadcast_to(np.asarray(quality, dtype=np.uint8), (n,)).copy(),
            source_time_ns=np.ascontiguousarray(source_time_ns, dtype=np.int64),
            received_time_ns=np.broadcast_to(np.asarray(recv, dtype=np.int64), (n,)).copy(),
            unit=column(unit),
        )

    @classmethod
    def from_readings(cls, readings: Iterable[Reading]) -> ReadingBatch:
        rows = list(readings)
        n = len(rows)
        asset = np.empty(n, dtype=object)
        field = np.empty(n, dtype=object)
        text = np.empty(n, dtype=object)
        unit = np.empty(n, dtype=object)
        kind = np.zeros(n, dtype=np.uint8)
        number = np.zeros(n, dtype=np.float64)
        integer = np.zeros(n, dtype=np.int64)
        quality = np.zeros(n, dtype=np.uint8)
        src = np.zeros(n, dtype=np.int64)
        recv = np.zeros(n, dtype=np.int64)
        for i, r in enumerate(rows):
            try:
                _fill_row(i, r, kind, number, integer, text, quality, src, recv)
            except OverflowError:
                raise InvalidReading(r, "value or time does not fit in 64 bits") from None
            asset[i] = r.asset
            field[i] = r.field
            unit[i] = r.unit
        return cls(asset, field, kind, number, integer, text, quality, src, recv, unit)

    def value_at(self, i: int) -> Value:
        k = self.kind[i]
        if k == KIND_FLOAT:
            return float(self.number[i])
        if k == KIND_INT:
            return int(self.integer[i])
        if k == KIND_BOOL:
            return bool(self.number[i])
        return str(self.text[i])

    def reading_at(self, i: int) -> Reading:
        """Row ``i`` as a Reading, tolerating junk in the columns (non-str names, a value
        that does not convert, an unknown quality): used for rows on their way to a dead
        letter, where the reading must still be shown as it came."""

        def text(x: object) -> str:
            return x if isinstance(x, str) else repr(x)

        try:
            value = self.value_at(i)
        except Exception:  # a broken value must still reach the dead letters
            value = repr(self.text[i])
        try:
            quality = Quality(int(self.quality[i]))
        except ValueError:
            quality = Quality.BAD
        return Reading(
            text(self.asset[i]),
            text(self.field[i]),
            value,
            quality,
            int(self.source_time_ns[i]),
            int(self.received_time_ns[i]),
            text(self.unit[i]),
        )

    def to_readings(self) -> list[Reading]:
        return [
            Reading(
                str(self.asset[i]),
                str(self.field[i]),
                self.value_at(i),
                Quality(int(self.quality[i])),
                int(self.source_time_ns[i]),
                int(self.received_time_ns[i]),
                str(self.unit[i]),
            )
            for i in range(len(self))
        ]

    def take(self, index: np.ndarray | slice) -> ReadingBatch:
        """The rows selected by ``index`` (a boolean mask, integer indices or a slice)."""
        return ReadingBatch(
            *(np.asarray(getattr(self, name))[index] for name in self.__slots__)  # type: ignore[attr-defined]
        )

    @classmethod
    def concat(cls, batches: Sequence[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return cls.empty()
        return cls(*(np.concatenate([getattr(b, name) for b in batches]) for name in cls.__slots__))  # type: ignore[attr-defined]


def _fill_row(
    i: int,
    r: Reading,
    kind: np.ndarray,
    number: np.ndarray,
    integer: np.ndarray,
    text: np.ndarray,
    quality: np.ndarray,
    src: np.ndarray,
    recv: np.ndarray,
) -> None:
    """Put reading ``r`` into row ``i`` of the value columns (OverflowError past 64 bits)."""
    text[i] = ""
    v = r.value
    if isinstance(v, bool):
        kind[i] = KIND_BOOL
        number[i] = 1.0 if v else 0.0
    elif isinstance(v, int):
        kind[i] = KIND_INT
        integer[i] = v
    elif isinstance(v, float):
        number[i] = v
    elif isinstance(v, str):
        kind[i] = KIND_STR
        text[i] = v
    else:
        raise InvalidReading(r, f"value of type {type(v).__name__} is not supported")
    quality[i] = r.quality
    src[i] = r.source_time_ns
    recv[i] = r.received_time_ns
