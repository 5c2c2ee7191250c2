"""A compact, exact byte form of a :class:`ReadingBatch` (one spool row per batch).

Why columnar blobs and not a row per reading: the spool's job is to make a batch durable as
fast as possible; one INSERT of one blob per batch costs the same for 10 readings or 10,000,
whereas a row per reading spends most of its time in SQLite's B-tree. Numeric columns are raw
little-endian NumPy bytes (exact: float64 to the last bit, int64 nanoseconds); string columns
are dictionary-encoded (a batch usually names a handful of assets and fields many times), and
a column whose values are all equal (the unit, the text column of a float batch) is stored
once.

Layout (all little-endian): ``b"KWB1"``, ``n`` (u32), then the columns in
:data:`_NUMERIC` order as raw arrays, then the string columns in :data:`_TEXT` order, each as
``mode`` (u8: 0 constant, 1 dictionary), ``count`` (u32) distinct strings as ``u32 length``
array + UTF-8 bytes, and for mode 1 the ``u32`` codes (n of them).
"""

from __future__ import annotations

import struct

import numpy as np

from core.reading import ReadingBatch

MAGIC = b"KWB1"
_NUMERIC = (
    ("kind", np.dtype("<u1")),
    ("number", np.dtype("<f8")),
    ("integer", np.dtype("<i8")),
    ("quality", np.dtype("<u1")),
    ("source_time_ns", np.dtype("<i8")),
    ("received_time_ns", np.dtype("<i8")),
)
_TEXT = ("asset", "field", "text", "unit")
_U32 = np.dtype("<u4")


class CorruptBatch(ValueError):
    """A blob that is not a batch written by :func:`encode` (a damaged spool file)."""


def _encode_strings(column: np.ndarray, out: list[bytes]) -> None:
    n = len(column)
    if n == 0 or bool((column == column[0]).all()):
        distinct = [column[0]] if n else []
        codes = None
    else:
        # Readings arrive grouped by series, so look up only the first value of each run of
        # equal values (one C-speed comparison per row instead of a dict lookup per row).
        starts = np.flatnonzero(np.concatenate(([True], column[1:] != column[:-1])))
        index: dict[str, int] = {}
        setdefault = index.setdefault
        heads = np.fromiter(
            (setdefault(s, len(index)) for s in column[starts]), dtype=_U32, count=len(starts)
        )
        codes = np.repeat(heads, np.diff(np.append(starts, n)))
        distinct = list(index)
    encoded = [s.encode("utf-8") for s in distinct]
    out.append(struct.pack("<BI", 0 if codes is None else 1, len(encoded)))
    out.append(np.fromiter(map(len, encoded), dtype=_U32, count=len(encoded)).tobytes())
    out.append(b"".join(encoded))
    if codes is not None:
        out.append(codes.tobytes())


def encode(batch: ReadingBatch) -> bytes:
    """The batch as bytes. Strings must be valid UTF-8 (run ``check_batch`` first)."""
    n = len(batch)
    out = [MAGIC, struct.pack("<I", n)]
    for name, dtype in _NUMERIC:
        out.append(np.ascontiguousarray(getattr(batch, name), dtype=dtype).tobytes())
    for name in _TEXT:
        _encode_strings(np.asarray(getattr(batch, name), dtype=object), out)
    return b"".join(out)


def decode(blob: bytes) -> ReadingBatch:
    """The batch :func:`encode` wrote; raises :class:`CorruptBatch` for anything else."""
    view = memoryview(blob)
    try:
        if bytes(view[:4]) != MAGIC:
            raise CorruptBatch("not a kilnworks batch (bad magic)")
        (n,) = struct.unpack_from("<I", view, 4)
        pos = 8
        columns: dict[str, np.ndarray] = {}
        for name, dtype in _NUMERIC:
            size = n * dtype.itemsize
            columns[name] = np.frombuffer(view[pos : pos + size], dtype=dtype).astype(
                dtype.newbyteorder("=")
            )
            pos += size
        for name in _TEXT:
            mode, count = struct.unpack_from("<BI", view, pos)
            pos += 5
            lengths = np.frombuffer(view[pos : pos + 4 * count], dtype=_U32)
            pos += 4 * count
            strings = np.empty(count, dtype=object)
            for i, length in enumerate(lengths.tolist()):
                strings[i] = str(view[pos : pos + length], "utf-8")
                pos += length
            if mode == 0:
                column = np.empty(n, dtype=object)
                column[:] = strings[0] if count else ""
            else:
                codes = np.frombuffer(view[pos : pos + 4 * n], dtype=_U32)
                pos += 4 * n
                column = strings[codes]
            columns[name] = column
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        if isinstance(exc, CorruptBatch):
            raise
        raise CorruptBatch(f"damaged batch: {exc}") from None
    if pos != len(view):
        raise CorruptBatch(f"damaged batch: {len(view) - pos} trailing bytes")
    return ReadingBatch(**columns)
