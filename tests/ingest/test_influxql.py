"""Safe InfluxQL: quoting rules, and injection attempts through names against a real InfluxDB."""

from __future__ import annotations

import uuid

import pytest

from core.reading import Quality, Reading, ReadingBatch
from ingest.influx_v1 import InfluxV1Store
from ingest.influxql import (
    duration_ns,
    int_literal,
    quote_ident,
    quote_regex_prefix,
    quote_string,
)
from tests.servers import InfluxDB

T0 = 1_767_225_600_000_000_000
HOUR = 3_600_000_000_000


def test_quote_ident():
    assert quote_ident("zone1_tc1_temperature_c") == '"zone1_tc1_temperature_c"'
    assert quote_ident('a"; DROP DATABASE x') == '"a\\"; DROP DATABASE x"'
    assert quote_ident("back\\slash") == '"back\\\\slash"'
    assert quote_ident("two\nlines") == '"two\\nlines"'


def test_quote_string():
    assert quote_string("x' OR 1=1 --") == "'x\\' OR 1=1 --'"
    assert quote_string("a\\'b") == "'a\\\\\\'b'"


def test_quote_regex_prefix_is_literal():
    assert quote_regex_prefix("xing.ai/") == "/^xing\\.ai\\//"
    assert quote_regex_prefix("a\\/b") == "/^a\\\\\\/b/"
    assert quote_regex_prefix("(.*)|[x]{2}+?^$") == "/^\\(\\.\\*\\)\\|\\[x\\]\\{2\\}\\+\\?\\^\\$/"
    with pytest.raises(ValueError, match="newline"):
        quote_regex_prefix("a\nb")


def test_numbers_are_checked():
    assert int_literal(T0) == str(T0)
    assert duration_ns(60_000_000_000) == "60000000000ns"
    for bad in ("1; DROP DATABASE x", 1.5, True):
        with pytest.raises(TypeError):
            int_literal(bad)  # type: ignore[arg-type]
    for bad in (0, -5, "60s", 1.0):
        with pytest.raises(ValueError):
            duration_ns(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quote_ident(None)  # type: ignore[arg-type]


HOSTILE_ASSETS = [
    "x' OR 1=1 --/site/line/kiln",
    "x'/s/l/k' OR \"asset\" =~ '.*' --",
    "evil\\'/s/l/k",
    "a/s/l/k'; DROP DATABASE canary; --",
    "a/b/c/.*",
]
HOSTILE_FIELDS = [
    'a"; DROP DATABASE canary',
    'x" FROM /.*/ --',
    "f'oo\\b\"ar",
    "/.*/",
]


@pytest.mark.integration
def test_injection_through_names_reads_only_what_it_names(influxdb_shared: InfluxDB):
    """Every query a store builds keeps hostile asset and field names as names: each asks
    back exactly its own points, an innocent asset is never returned by a hostile prefix,
    and no statement smuggled in a name runs (the canary database survives)."""
    canary = influxdb_shared.create_database("canary")
    database = influxdb_shared.create_database("inj_" + uuid.uuid4().hex[:8])
    innocent = "xinghai/plant-1/firing-shop/kiln-1"
    rows = []
    for i, asset in enumerate([innocent, *HOSTILE_ASSETS]):
        for j, field in enumerate(["zone1_tc1_temperature_c", *HOSTILE_FIELDS]):
            value = 1000.0 * i + j
            rows.append(Reading(asset, field, value, Quality.GOOD, T0 + i, T0, "°C"))
    try:
        with InfluxV1Store.from_url(influxdb_shared.store_url(database)) as store:
            result = store.write(ReadingBatch.from_readings(rows))
            assert result.rejected == [] and result.written == len(rows)
            for r in rows:
                got = store.series(r.asset, r.field, T0 - HOUR, T0 + HOUR)
                assert got.values.tolist() == [r.value], (r.asset, r.field)
                windowed = store.series(
                    r.asset, r.field, T0 - HOUR, T0 + HOUR, window_ns=HOUR, aggregate="sum"
                )
                assert windowed.values.tolist() == [r.value]
                assert store.readings(r.asset, r.field, T0 - HOUR, T0 + HOUR) == [r]
            for asset in [innocent, *HOSTILE_ASSETS]:
                latest = store.latest(asset)
                assert {r.asset for r in latest.values()} == {asset}
                assert len(latest) == 1 + len(HOSTILE_FIELDS)
                assert {a for a, _ in store.list_series(asset)} == {asset}
            assert store.list_series("x'") == sorted(
                (a, f)
                for a in HOSTILE_ASSETS[:2]
                for f in ["zone1_tc1_temperature_c", *HOSTILE_FIELDS]
            )
            assert store.list_series("a/b/c/.") == [
                ("a/b/c/.*", f) for f in sorted(["zone1_tc1_temperature_c", *HOSTILE_FIELDS])
            ]
        databases = influxdb_shared.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
        assert [canary] in databases and [database] in databases
    finally:
        influxdb_shared.query(f'DROP DATABASE "{database}"')
