"""export(import(x)) == x through a real InfluxDB 1.x (property-based), and the import command's
behaviour when the store is unreachable."""

from __future__ import annotations

import io
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli import main as kilnworks
from ingest.stores import open_store
from tests.ingest._helpers import KILN, T0
from tests.ingest.test_csv import PAGE_SIZES, _is_text_value, canonical_csv, round_trip
from tests.servers import InfluxDB, free_port

pytestmark = pytest.mark.integration

# InfluxDB cannot hold every name: no newlines or other control characters, no backslashes
# (line protocol has no escape for them), no field starting with '#'. Text *values* may hold
# anything valid in UTF-8 but NUL.
_NAME_CHAR = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\/")
_PART = st.text(_NAME_CHAR, min_size=1, max_size=6)
_ASSET = st.builds(lambda *p: "/".join(p), _PART, _PART, _PART, _PART)
_FIELD = st.text(_NAME_CHAR, min_size=1, max_size=8).filter(lambda f: not f.startswith("#"))
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
    max_size=10,
).filter(_is_text_value)  # fmt: skip
_VALUE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans(), _TEXT)
# Times within a week: every week is a new InfluxDB shard, and shards are slow to create.
_TIME = st.integers(min_value=T0, max_value=T0 + 7 * 86_400 * 10**9 - 1)
_ROW = st.tuples(
    _TIME, _ASSET, _FIELD, _VALUE, st.text(_NAME_CHAR, max_size=3),
    st.sampled_from(["good", "uncertain", "bad"]),
)  # fmt: skip
# (index of a row to copy, the copy's unit)
_TIE = st.tuples(st.integers(0, 11), st.text(_NAME_CHAR, max_size=3))


def one_type_per_field(rows: list[tuple]) -> list[tuple]:
    """InfluxDB keeps one value type per field (measurement); keep rows of the first type."""
    kinds: dict[str, type] = {}
    return [r for r in rows if kinds.setdefault(r[2], type(r[3])) is type(r[3])]


@pytest.fixture(scope="module")
def csv_database(influxdb_shared: InfluxDB) -> str:
    return influxdb_shared.store_url(influxdb_shared.create_database("csv_" + uuid.uuid4().hex))


@settings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(rows=st.lists(_ROW, min_size=1, max_size=12), ties=st.lists(_TIE, max_size=6),
       page_size=PAGE_SIZES)  # fmt: skip
def test_export_of_import_through_influxdb_gives_the_file_back(
    csv_database: str, rows: list[tuple], ties: list[tuple[int, str]], page_size: int
) -> None:
    # One database for all examples (creating one per example is slow): each example gets an
    # enterprise and field prefix of its own and exports only that enterprise.
    tag = "e" + uuid.uuid4().hex[:8]
    rows = [(t, tag + "/" + a.split("/", 1)[1], f"{tag}_{f}", v, u, q) for t, a, f, v, u, q in rows]
    # InfluxDB keeps one point per unit tag: copies of rows at the same time with other units
    rows += [(r[0], r[1], r[2], r[3], unit, r[5]) for i, unit in ties for r in rows[i:][:1]]
    x = canonical_csv(one_type_per_field(rows), per_unit=True)
    store = open_store(csv_database)
    try:
        assert round_trip(store, x, asset=tag, page_size=page_size) == x
    finally:
        store.close()


def test_import_into_an_unreachable_store_exits_3_and_says_so(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"time,asset,field,value\n1,{KILN},t_c,1.5\n")
    url = f"influxdb://kiln:s3cret@127.0.0.1:{free_port()}/plant?timeout=0.5"
    assert kilnworks(["import", str(src), "--store", url, "--retries", "1", "-q"]) == 3
    err = capsys.readouterr().err
    assert "unreachable" in err and "re-run" in err
    assert "s3cret" not in err


def test_export_from_influxdb_filters_like_sqlite(influx_database: str) -> None:
    from ingest.cli_export import export_csv
    from ingest.cli_import import import_csv

    text = (
        "time,asset,field,value,unit,quality\r\n"
        f"2026-01-01T00:00:00.000000001Z,{KILN},burner_on,true,,good\r\n"
        f"2026-01-01T00:00:00.000000001Z,{KILN},t_c,1.5,°C,bad\r\n"
        f"2026-01-01T00:00:02.000000000Z,{KILN},t_c,2.5,°C,good\r\n"
        "2026-01-01T00:00:00.000000000Z,xinghai/plant-1/press-shop/press-1,t_c,9.0,,good\r\n"
    )
    store = open_store(influx_database)
    import_csv(io.StringIO(text, newline=""), store, name="x", err=io.StringIO())
    out = io.StringIO(newline="")
    n = export_csv(
        store, out, asset="xinghai/plant-1/firing-shop", fields=["t_c"], start_ns=T0 + 1,
        end_ns=T0 + 2 * 10**9,
    )  # fmt: skip
    assert n == 1
    assert out.getvalue().splitlines()[1] == (
        f"2026-01-01T00:00:00.000000001Z,{KILN},t_c,1.5,°C,bad"
    )
    store.close()
