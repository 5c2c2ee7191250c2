"""InfluxDB line protocol: one point per reading, escaped exactly as InfluxDB 1.x parses it.

Called by the InfluxDB stores (``ingest/influx_v1.py``, ``ingest/influx_v2.py``) and by the
benchmarks; nothing here does I/O. The schema (docs/contributing.md, "The InfluxDB schema")::

    <field>,asset=<e/s/l/a>,enterprise=<e>,line=<l>,site=<s>[,unit=<u>] \\
        value=<v>,quality=<q>i,received_ns=<r>i <source_time_ns>      (one line)

Escaping (InfluxDB 1.x line protocol reference, checked against Debian's influxd 1.6.7):

* measurement: ``,`` and space are escaped with a backslash;
* tag keys, tag values: ``,``, ``=`` and space are escaped;
* string field values: ``"`` and ``\\`` are escaped, everything else (newlines too) is literal;
* a backslash anywhere else is literal. InfluxDB has no escape for the backslash itself outside
  string fields, so a name where a backslash precedes ``\\ , = "`` or space, or ends the name,
  reads back differently (influxd 1.6 turns ``a\\=b`` into ``a=b``): such readings are
  **rejected**, never written altered.

Also rejected, each with a reason naming the reading: NaN/inf floats, empty names, a field name
starting with ``#`` (InfluxDB reads the line as a comment and silently drops it) or a tab,
newlines in names, NUL or CR in names (InfluxQL cannot name them in a query), text InfluxDB
cannot hold as UTF-8 (lone surrogates), ints outside int64, timestamps
outside InfluxDB's range, keys and strings over InfluxDB's 64 KiB limit, an asset path that is
not ``enterprise/site/line/asset``.

Floats are written with Python's ``repr`` (the shortest string that parses back to the same
double), so every value round-trips to the last bit; a fast vectorised path produces the same
text for values with at most 15 significant digits (what sensors produce).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from core.reading import (
    KIND_BOOL,
    KIND_FLOAT,
    KIND_INT,
    KIND_STR,
    AssetPath,
    Quality,
    Reading,
    ReadingBatch,
)
from ingest.contracts import Rejected

# InfluxDB's valid timestamp range (models.MinNanoTime / MaxNanoTime in influxdb 1.x).
MIN_TIME_NS = -9223372036854775806
MAX_TIME_NS = 9223372036854775806
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# InfluxDB 1.x refuses series keys and string field values longer than 64 KiB.
MAX_KEY_BYTES = 65535
MAX_STRING_BYTES = 65535

PRECISIONS = {"ns": 1, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
# A backslash InfluxDB would read as an escape (or one that ends a name): not representable.
_AMBIGUOUS_BACKSLASH = re.compile(r'\\(?=[\\,=" ]|$)')


class LineProtocolError(ValueError):
    """A reading that cannot be written as line protocol; ``str()`` says which and why."""


@dataclass(slots=True)
class EncodedBatch:
    """A batch as line protocol, ready to POST.

    ``body`` holds one line per accepted reading, joined by ``"\\n"`` (no trailing newline);
    ``index[k]`` is the batch row of line ``k`` (int64), so a store can map a failed line back
    to its reading and re-encode sub-batches when it isolates failures; ``rejected`` holds the
    readings that cannot be encoded, each with its reason.
    """

    body: bytes
    index: np.ndarray
    rejected: list[Rejected] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.index.shape[0])


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_tag(text: str) -> str:
    """Escape a tag key or tag value (also right for field keys)."""
    return text.translate(_TAG_ESCAPES)


def escape_string_field(text: str) -> str:
    """The quoted form of a string field value."""
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def name_problem(what: str, text: object) -> str | None:
    """Why ``text`` cannot be a measurement, tag key or tag value, or None if it can."""
    if not isinstance(text, str):
        return f"{what} must be a string, got {type(text).__name__}"
    if not text:
        return f"{what} is empty"
    if "\n" in text:
        return f"{what} {text!r} contains a newline (line protocol cannot represent it)"
    if "\x00" in text or "\r" in text:
        # InfluxQL's scanner reads NUL as end of input and CR as a newline, and has no escape
        # for either: a name holding one could be written but never queried.
        return f"{what} {text!r} contains a NUL or carriage return (InfluxQL cannot query it)"
    if _AMBIGUOUS_BACKSLASH.search(text):
        return (
            f'{what} {text!r} has a backslash before one of \\ , = " space or at its end, '
            "which InfluxDB would read as an escape"
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return f"{what} {text!r} is not valid Unicode text ({exc.reason})"
    if size > MAX_KEY_BYTES:
        return f"{what} is {size} bytes long, InfluxDB allows {MAX_KEY_BYTES}"
    return None


def series_prefix(asset: str, field_name: str, unit: str) -> str:
    """``measurement,tags value=`` for one series; raises :class:`LineProtocolError`."""
    problem = name_problem("field name", field_name)
    if problem is None and field_name.startswith("#"):
        problem = f"field name {field_name!r} starts with '#' (InfluxDB reads a comment)"
    if problem is None and field_name.startswith("\t"):
        # A space can be escaped; a tab cannot, and InfluxDB strips it from the line start.
        problem = f"field name {field_name!r} starts with a tab (InfluxDB would strip it)"
    if problem is None:
        problem = name_problem("asset path", asset)
    if problem is None and unit:
        problem = name_problem("unit", unit)
    if problem is None:
        try:
            path = AssetPath.parse(asset)
        except ValueError as exc:
            problem = str(exc)
        else:
            # Each part is a tag value of its own: "a/b\\/c/d" is fine as the asset tag but
            # its site "b\\" would end in a backslash.
            for name, part in zip(("enterprise", "site", "line"), path, strict=False):
                problem = problem or name_problem(f"asset path {asset!r}: {name}", part)
    if problem is not None:
        raise LineProtocolError(problem)
    tags = (
        f"{escape_measurement(field_name)},asset={escape_tag(asset)},"
        f"enterprise={escape_tag(path.enterprise)},line={escape_tag(path.line)},"
        f"site={escape_tag(path.site)}"
    )
    if unit:
        tags += f",unit={escape_tag(unit)}"
    if len(tags.encode("utf-8")) > MAX_KEY_BYTES:
        raise LineProtocolError(f"series key is longer than InfluxDB's {MAX_KEY_BYTES} bytes")
    return tags + " value="


def _string_value(text: object) -> str:
    if not isinstance(text, str):
        raise LineProtocolError(f"text value must be a str, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise LineProtocolError(f"text value is not valid Unicode ({exc.reason})") from None
    if size > MAX_STRING_BYTES:
        raise LineProtocolError(f"text value is {size} bytes, InfluxDB allows {MAX_STRING_BYTES}")
    return escape_string_field(text)


def format_value(value: object) -> str:
    """The line-protocol text of a reading's value; raises :class:`LineProtocolError`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(f"integer {value} does not fit in 64 bits")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"value {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return _string_value(value)
    raise LineProtocolError(f"value of type {type(value).__name__} is not supported")


def _check_time(t: object, precision: str) -> int:
    if not isinstance(t, int | np.integer) or isinstance(t, bool):
        raise LineProtocolError("source_time_ns must be an integer of nanoseconds")
    t = int(t)
    if not MIN_TIME_NS <= t <= MAX_TIME_NS:
        raise LineProtocolError(f"source_time_ns {t} is outside InfluxDB's time range")
    return t // PRECISIONS[precision]


def encode_reading(r: Reading, precision: str = "ns") -> str:
    """One reading as one line (no newline). Raises :class:`LineProtocolError` naming the
    reading when it cannot be written faithfully. The slow, obvious reference for
    :func:`encode_batch`, which must produce the same text."""
    try:
        prefix = series_prefix(r.asset, r.field, r.unit)
        value = format_value(r.value)
        quality = int(r.quality)
        if quality not in (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD):
            raise LineProtocolError(f"quality {quality} is not a core.reading.Quality")
        t = _check_time(r.source_time_ns, precision)
        if not isinstance(r.received_time_ns, int | np.integer) or not (
            INT64_MIN <= r.received_time_ns <= INT64_MAX
        ):
            raise LineProtocolError("received_time_ns must be a 64-bit integer of nanoseconds")
    except LineProtocolError as exc:
        raise LineProtocolError(f"invalid reading ({_describe(r)}): {exc}") from None
    return f"{prefix}{value},quality={quality}i,received_ns={int(r.received_time_ns)}i {t}"


def _describe(r: Reading) -> str:
    return f"{r.asset!r} {r.field!r} @ {r.source_time_ns}"


# ---------------------------------------------------------------------------- batch path


def _codes(column: np.ndarray) -> tuple[np.ndarray, list]:
    """Per-row codes of a column of hashables and its distinct values (first-seen order).

    ``dict.fromkeys`` and ``map(dict.__getitem__)`` run in C (~50 ns a row); a batch has few
    distinct assets, fields and units, so nothing else is per row."""
    seen = dict.fromkeys(column.tolist())
    distinct = list(seen)
    if len(distinct) == 1:
        return np.zeros(len(column), dtype=np.int64), distinct
    for code, key in enumerate(distinct):
        seen[key] = code
    return np.fromiter(map(seen.__getitem__, column.tolist()), np.int64, len(column)), distinct


def _factorize(*columns: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """Codes per row for the distinct combinations of ``columns``, and those combinations."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    values = []
    for column in columns:
        codes, distinct = _codes(column)
        combined = combined * len(distinct) + codes
        values.append(distinct)
    # The combined code space is the product of the distinct counts: small for real batches
    # (one kiln: 1 asset x 24 fields x 1 unit), so a lookup table beats sorting.
    space = 1
    for distinct in values:
        space *= len(distinct)
    if space <= 4 * len(combined) + 1024:
        present = np.flatnonzero(np.bincount(combined, minlength=space))
        table = np.full(space, -1, dtype=np.int64)
        table[present] = np.arange(len(present))
        codes = table[combined]
    else:
        present, codes = np.unique(combined, return_inverse=True)
    keys = []
    for code in present.tolist():
        key = []
        for distinct in reversed(values):
            code, k = divmod(code, len(distinct))
            key.append(distinct[k])
        keys.append(tuple(reversed(key)))
    return codes.astype(np.int64, copy=False), keys


def _float_texts(values: np.ndarray) -> list[bytes]:
    """``repr`` of every value as ASCII bytes (values must be finite)."""
    # repr of the whole list runs CPython's float formatting loop in C, and one encode and
    # one split replace a million small str -> bytes conversions.
    if not len(values):
        return []
    return repr(values.tolist())[1:-1].encode("ascii").split(b", ")


def _int_texts(values: np.ndarray, suffix: str = "") -> list[bytes]:
    """Decimal text of every value with ``suffix``, as ASCII bytes."""
    if not len(values):
        return []
    if values.min() == values.max():
        return [f"{int(values[0])}{suffix}".encode("ascii")] * len(values)
    text = str(values.tolist())[1:-1]
    if suffix:
        text = text.replace(", ", suffix + ", ") + suffix
    return text.encode("ascii").split(b", ")


def encode_batch(batch: ReadingBatch, precision: str = "ns") -> EncodedBatch:
    """Encode a columnar batch; invalid readings go to ``rejected``, the rest to ``body``.

    Called by the InfluxDB stores for every write, from the forwarder thread. Never raises
    for bad data (each bad reading is rejected with a reason naming it); raises ValueError for
    an unknown ``precision``. Produces exactly the lines :func:`encode_reading` would, in
    batch order.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    n = len(batch)
    if n == 0:
        return EncodedBatch(b"", np.zeros(0, dtype=np.int64), [])
    reasons: dict[int, str] = {}
    ok = np.ones(n, dtype=bool)

    def reject(rows: np.ndarray, reason: str | list[str]) -> None:
        rows = rows[ok[rows]]  # the first reason found for a row wins
        ok[rows] = False
        for j, i in enumerate(rows.tolist()):
            reasons[i] = reason if isinstance(reason, str) else reason[j]

    # Series: validated and escaped once per distinct (asset, field, unit).
    codes, keys = _factorize(batch.asset, batch.field, batch.unit)
    prefixes = np.empty(len(keys), dtype=object)
    bad_series = []
    for s, (asset, field_name, unit) in enumerate(keys):
        try:
            prefixes[s] = series_prefix(asset, field_name, unit).encode("utf-8")
        except (LineProtocolError, TypeError, AttributeError) as exc:
            prefixes[s] = b""
            bad_series.append((s, str(exc)))
    if bad_series:
        series_reason = np.empty(len(keys), dtype=object)
        for s, reason in bad_series:
            series_reason[s] = reason
        rows = np.flatnonzero(series_reason[codes] != None)  # noqa: E711 - elementwise
        reject(rows, series_reason[codes[rows]].tolist())

    kind = batch.kind
    reject(np.flatnonzero(kind > KIND_STR), "unknown value kind")
    reject(np.flatnonzero(batch.quality > Quality.BAD), "quality is not a core.reading.Quality")
    t = batch.source_time_ns
    reject(
        np.flatnonzero((t < MIN_TIME_NS) | (t > MAX_TIME_NS)),
        "source_time_ns is outside InfluxDB's time range",
    )

    values = np.empty(n, dtype=object)
    is_float = kind == KIND_FLOAT
    finite = np.isfinite(batch.number)
    reject(np.flatnonzero(is_float & ~finite), "value is not a finite number (NaN or inf)")
    float_rows = np.flatnonzero(is_float & finite)
    float_texts = _float_texts(batch.number[float_rows])
    rows = np.flatnonzero(kind == KIND_INT)
    values[rows] = _int_texts(batch.integer[rows], "i")
    rows = np.flatnonzero(kind == KIND_BOOL)
    values[rows] = np.where(batch.number[rows] != 0.0, b"true", b"false")
    rows = np.flatnonzero(kind == KIND_STR)
    if len(rows):
        texts, bad_rows, bad_reasons = [], [], []
        for i, text in zip(rows.tolist(), batch.text[rows].tolist(), strict=True):
            try:
                texts.append(_string_value(text).encode("utf-8"))
            except LineProtocolError as exc:
                texts.append(b"")
                bad_rows.append(i)
                bad_reasons.append(str(exc))
        values[rows] = texts
        reject(np.asarray(bad_rows, dtype=np.int64), bad_reasons)

    index = np.flatnonzero(ok)
    m = len(index)
    if m == 0:
        body = b""
    else:
        if precision != "ns":
            t = t // PRECISIONS[precision]
        # One object matrix of bytes pieces, raveled and joined once: bytes.join is the
        # fastest way CPython has to concatenate millions of small pieces, and working in
        # bytes spares encoding a 100 MB str (UCS-2 as soon as one name is not ASCII).
        recv = batch.received_time_ns[index]
        quality = batch.quality[index]
        if recv.min() == recv.max():  # one receive time (one source message): one piece
            tails = np.array(
                [f",quality={q}i,received_ns={int(recv[0])}i ".encode() for q in range(3)],
                dtype=object,
            )
            columns = [prefixes[codes[index]], None, tails[quality]]
        else:
            columns = [
                prefixes[codes[index]],
                None,
                _QUALITY_TEXT[quality],
                _int_texts(recv, "i "),
            ]
        # All floats and all valid (the kiln case): the texts are already in line order.
        if len(float_texts) == m == n:
            columns[1] = float_texts
        else:
            values[float_rows] = float_texts
            columns[1] = values[index]
        columns.append(_int_texts(t[index]))
        columns.append([b"\n"])
        width = len(columns)
        pieces: list = [b"\n"] * (width * m)
        for j, column in enumerate(columns[:-1]):
            # extended-slice assignment from a list is a C loop over references
            pieces[j::width] = column.tolist() if isinstance(column, np.ndarray) else column
        body = b"".join(pieces)[:-1]
    rejected = []
    for i, why in sorted(reasons.items()):
        reading = batch.reading_at(i)
        rejected.append(Rejected(reading, f"invalid reading ({_describe(reading)}): {why}"))
    return EncodedBatch(body, index, rejected)


_QUALITY_TEXT = np.array(
    [f",quality={int(q)}i,received_ns=".encode() for q in Quality], dtype=object
)
