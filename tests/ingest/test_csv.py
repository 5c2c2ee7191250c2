"""The CSV exchange format: times, values, row errors with line numbers, and the exact round trip
export(import(x)) == x on the embedded store (property-based)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.reading import Quality
from ingest.cli_export import export_csv
from ingest.cli_import import import_csv
from ingest.csvio import (
    CSVFormatError,
    format_time,
    format_value,
    parse_time,
    parse_value,
    read_chunks,
)
from ingest.paging import DEFAULT_PAGE_SIZE
from ingest.store_sqlite import SQLiteStore
from tests.ingest._helpers import KILN

HEADER = "time,asset,field,value,unit,quality\r\n"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000_000_000),
        ("2026-01-01T08:00:00+08:00", 1_767_225_600_000_000_000),
        ("2025-12-31T19:30:00.5-04:30", 1_767_225_600_500_000_000),
        ("2026-01-01T00:00:00.000000001Z", 1_767_225_600_000_000_001),
        ("2026-01-01t00:00:00.123z", 1_767_225_600_123_000_000),
        ("2026-01-01", 1_767_225_600_000_000_000),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("1767225600000000007", 1_767_225_600_000_000_007),
        ("-5", -5),
    ],
)
def test_parse_time(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize(
    "text",
    ["2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00", "yesterday",
     "2026-01-01T00:00:00.1234567891Z", "99999999999999999999", "2026-02-30"],
)  # fmt: skip
def test_bad_times_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="time"):
        parse_time(text)


def test_format_time_is_rfc3339_with_nine_digits() -> None:
    assert format_time(1_767_225_600_000_000_001) == "2026-01-01T00:00:00.000000001Z"
    assert format_time(-1) == "1969-12-31T23:59:59.999999999Z"


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12.0), ("-1.5", -1.5), ("6.02e23", 6.02e23), (".5", 0.5), ("true", True),
     ("false", False), ("True", "True"), ("12 kg", "12 kg"), (" 12", " 12"), ("0x10", "0x10"),
     ("9007199254740992", 2.0**53), ("1_000", "1_000")],
)  # fmt: skip
def test_parse_value(text: str, value: object) -> None:
    got = parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("nan", "finite"), ("-Inf", "finite"), ("1e999", "too large"),
     ("12345678901234567891", "cannot hold exactly")],
)  # fmt: skip
def test_refused_values(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_value(text)


def test_format_value_is_exact_and_canonical() -> None:
    x = 0.1 + 0.2
    assert float(format_value(x)) == x and format_value(x) == "0.30000000000000004"
    assert [format_value(v) for v in (True, False, 3.0, 7, "a,b")] == [
        "true", "false", "3.0", "7", "a,b",
    ]  # fmt: skip


def test_rows_with_errors_are_reported_by_line_and_the_rest_kept() -> None:
    text = (
        "time,asset,field,value,unit,quality\n"
        f"2026-01-01T00:00:00Z,{KILN},t_c,1.5,°C,good\n"  # line 2
        f"2026-01-01T00:00:01Z,{KILN},t_c,nan,°C,good\n"  # line 3: nan
        f'2026-01-01T00:00:02Z,{KILN},note,"two\nlines",,bad\n'  # lines 4-5: one record
        f"not-a-time,{KILN},t_c,1,,\n"  # line 6
        "2026-01-01T00:00:03Z,kiln-2,t_c,1,,\n"  # line 7: bad asset
        f"2026-01-01T00:00:04Z,{KILN},t_c,1,,\n"  # line 8 (quality empty -> good)
        f"2026-01-01T00:00:05Z,{KILN},t_c,1\n"  # line 9: too few fields
        "\n"  # line 10: blank, ignored
        f"2026-01-01T00:00:06Z,{KILN},t_c,2,,meh\n"  # line 11: bad quality
    )
    chunks = list(read_chunks(io.StringIO(text, newline=""), name="k.csv", chunk_rows=3))
    readings = [r for c in chunks for r in c.batch.to_readings()]
    lines = [n for c in chunks for n in c.lines]
    errors = {e.line: e.reason for c in chunks for e in c.errors}
    assert lines == [2, 4, 8]
    assert [r.value for r in readings] == [1.5, "two\nlines", 1.0]
    assert [r.quality for r in readings] == [Quality.GOOD, Quality.BAD, Quality.GOOD]
    assert readings[0].unit == "°C"
    assert sorted(errors) == [3, 6, 7, 9, 11]
    assert "finite" in errors[3] and "time" in errors[6] and "four non-empty" in errors[7]
    assert "expected 6 fields" in errors[9] and "quality" in errors[11]


def test_header_may_reorder_and_omit_optional_columns() -> None:
    text = f"\ufeffvalue,field,asset,time\n3.5,t_c,{KILN},5\n"
    (chunk,) = read_chunks(io.StringIO(text, newline=""))
    (r,) = chunk.batch.to_readings()
    assert (r.value, r.field, r.asset, r.source_time_ns, r.unit) == (3.5, "t_c", KILN, 5, "")


@pytest.mark.parametrize(
    ("header", "message"),
    [("", "empty"), ("time,asset,value", "missing column\\(s\\) field"),
     ("time,asset,field,value,colour", "unknown column 'colour'"),
     ("time,asset,field,value,time", "appears twice")],
)  # fmt: skip
def test_bad_headers_fail_the_whole_file(header: str, message: str) -> None:
    with pytest.raises(CSVFormatError, match=message):
        list(read_chunks(io.StringIO(header + "\n", newline=""), name="x.csv"))


# -- the exact round trip ------------------------------------------------------------------

_TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_PART = st.text(_TEXT.filter(lambda c: c != "/"), min_size=1, max_size=8)
_ASSET = st.builds(lambda *p: "/".join(p), _PART, _PART, _PART, _PART)


def _is_text_value(s: str) -> bool:
    try:
        return parse_value(s) == s
    except ValueError:
        return False


_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(_TEXT, min_size=1, max_size=12).filter(_is_text_value),
)
_TIME = st.integers(min_value=-(2**62), max_value=2**62)
_ROW = st.tuples(
    _TIME, _ASSET, st.text(_TEXT, min_size=1, max_size=10), _VALUE,
    st.text(_TEXT, max_size=4), st.sampled_from(["good", "uncertain", "bad"]),
)  # fmt: skip


def canonical_csv(
    rows: list[tuple], time_format: str = "rfc3339", *, per_unit: bool = False
) -> str:
    """The canonical CSV of ``rows``: one row per (asset, field, time), sorted as export
    sorts, written by the csv module the way any RFC 4180 writer would. ``per_unit``: one
    row per (asset, field, time, unit) instead, sorted by unit last (InfluxDB keeps a point
    per unit tag)."""
    import csv

    unique = {
        (a, f, t, u) if per_unit else (a, f, t): (t, a, f, v, u, q) for t, a, f, v, u, q in rows
    }
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["time", "asset", "field", "value", "unit", "quality"])
    for key in sorted(unique):
        t, a, f, v, u, q = unique[key]
        w.writerow([format_time(t) if time_format == "rfc3339" else t, a, f, format_value(v), u, q])
    return out.getvalue()


def round_trip(
    store,
    text: str,
    time_format: str = "rfc3339",
    asset: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> str:
    err = io.StringIO()
    _, refused = import_csv(io.StringIO(text, newline=""), store, name="x.csv", err=err)
    assert refused == 0, err.getvalue()
    out = io.StringIO(newline="")
    export_csv(store, out, time_format=time_format, asset=asset, page_size=page_size)
    return out.getvalue()


# small pages (many per example) and the default
PAGE_SIZES = st.integers(1, 6) | st.just(DEFAULT_PAGE_SIZE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_ROW, min_size=1, max_size=25), ns=st.booleans(), page_size=PAGE_SIZES)
def test_export_of_import_gives_the_file_back_exactly(
    rows: list[tuple], ns: bool, page_size: int
) -> None:
    fmt = "ns" if ns else "rfc3339"
    x = canonical_csv(rows, fmt)
    store = SQLiteStore()
    try:
        assert round_trip(store, x, fmt, page_size=page_size) == x
    finally:
        store.close()


def test_round_trip_of_the_awkward_cases() -> None:
    rows = [
        (1_767_225_600_000_000_001, 'xing hai/plant,1/line "A"/kiln=2 \'β\'', "温度 c", 0.1 + 0.2,
         "°C", "good"),
        (-1, "e/s/l/a", "f", 5e-324, "", "bad"),
        (0, "e/s/l/a", "f", -0.0, "m3/h", "uncertain"),
        (1, "e/s/l/a", "f", "a \"quoted\", comma\r\nnew line", "", "good"),
        (2, "e/s/l/a", "f", True, "", "good"),
    ]  # fmt: skip
    x = canonical_csv(rows)
    store = SQLiteStore()
    assert round_trip(store, x) == x
    assert store.count() == 5
