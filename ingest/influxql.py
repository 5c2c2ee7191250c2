"""Safe InfluxQL: quoted identifiers, escaped string literals and regexes, checked numbers.

Every InfluxQL statement kilnworks sends is built from these helpers, never by pasting a name
into a query: an asset called ``x' OR 1=1 --`` or a field called ``a"; DROP DATABASE x`` must
stay a name. The rules follow influxql's scanner (``ScanString`` / ``ScanRegex``):

* identifiers are double-quoted; inside, ``\\`` and ``"`` are backslash-escaped and a newline
  is written ``\\n``;
* string literals are single-quoted with the same escapes for ``\\`` and ``'``;
* regex literals are ``/.../``; RE2 metacharacters are backslash-escaped (Go's
  ``regexp.QuoteMeta`` set) and ``/`` becomes ``\\/`` (the only escape the scanner rewrites).

Numbers (timestamps, durations, limits) are formatted from ``int`` after a type check, so a
string can never reach those positions.
"""

from __future__ import annotations

import re

_IDENT_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n"})
# Go's regexp.QuoteMeta escapes exactly these; RE2 rejects escapes of letters and digits,
# which Python's re.escape could produce for some inputs.
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote_ident(name: str) -> str:
    """``"name"`` for a measurement, tag key, field key, database or retention policy."""
    _check_str(name)
    return '"' + name.translate(_IDENT_ESCAPES) + '"'


def quote_string(text: str) -> str:
    """``'text'``: a string literal, e.g. a tag value in ``WHERE "asset" = '...'``."""
    _check_str(text)
    return "'" + text.translate(_STRING_ESCAPES) + "'"


def quote_regex_prefix(prefix: str) -> str:
    """``/^prefix/``: a regex literal matching strings that start with ``prefix`` literally."""
    _check_str(prefix)
    if "\n" in prefix:
        # The regex scanner has no newline escape; no stored name contains one (line protocol
        # cannot carry it), so nothing could match anyway.
        raise ValueError("a regex prefix cannot contain a newline")
    body = _REGEX_META.sub(r"\\\1", prefix).replace("/", "\\/")
    return "/^" + body + "/"


def int_literal(value: int) -> str:
    """A checked integer literal (nanosecond timestamps, limits)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return str(value)


def duration_ns(value: int) -> str:
    """A positive duration in nanoseconds, e.g. ``60000000000ns``."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"expected a positive integer of nanoseconds, got {value!r}")
    return f"{value}ns"


def _check_str(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
