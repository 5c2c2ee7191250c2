"""InfluxV1Store against a real InfluxDB 1.6 (Debian's influxd), started by the fixtures."""

from __future__ import annotations

import math
import struct
import uuid
from collections import defaultdict

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.reading import Quality, Reading, ReadingBatch
from ingest.contracts import Store, StoreUnavailable
from ingest.influx_v1 import DatabaseNotFound, InfluxV1Config, InfluxV1Store, make_client
from ingest.lineprotocol import LineProtocolError, encode_reading
from tests.servers import InfluxDB

pytestmark = pytest.mark.integration

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000_000


def counting_factory(calls: list[httpx.Request]):
    """A client factory that records every request (to see bisection happen)."""

    def factory(config: InfluxV1Config) -> httpx.Client:
        client = make_client(config)
        client.event_hooks["request"].append(calls.append)
        return client

    return factory


def kiln_floats(n: int, *, field: str = "zone1_tc1_temperature_c", start: int = T0, step=10**9):
    rng = np.random.default_rng(n)
    return ReadingBatch.from_floats(
        KILN,
        field,
        rng.normal(1200.0, 30.0, n),
        start + np.arange(n, dtype=np.int64) * step,
        quality=rng.integers(0, 3, n).astype(np.uint8),
        received_time_ns=T0 + 5,
    )


def test_is_a_store(influx_database):
    with InfluxV1Store.from_url(influx_database) as store:
        assert isinstance(store, Store)


# --------------------------------------------------------------------- round trip


def _float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


name_chars = st.sampled_from(list(' ,="\\#\t\x00az09_-./é中°')) | st.characters(codec="utf-8")
names = st.text(name_chars, min_size=1, max_size=6)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(_float_from_bits, st.integers(0, 2**64 - 1)).filter(math.isfinite),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(max_size=12),
)
readings = st.builds(
    Reading,
    asset=st.builds(lambda *p: "/".join(p), names, names, names, names),
    field=names,
    value=values,
    quality=st.sampled_from(list(Quality)),
    source_time_ns=st.integers(T0 - 10**15, T0 + 10**15),
    received_time_ns=st.integers(0, 2**63 - 1),
    unit=st.just("") | names,
)


def _same(a: Reading, b: Reading) -> bool:
    if isinstance(a.value, float) and isinstance(b.value, float):
        same_value = struct.pack("<d", a.value) == struct.pack("<d", b.value)  # to the bit, -0.0
    else:
        same_value = type(a.value) is type(b.value) and a.value == b.value
    return same_value and a._replace(value=None) == b._replace(value=None)


@pytest.fixture(scope="module")
def round_trip_store(influxdb_shared: InfluxDB):
    database = influxdb_shared.create_database("rt_" + uuid.uuid4().hex[:10])
    with InfluxV1Store.from_url(influxdb_shared.store_url(database)) as store:
        yield store
    influxdb_shared.query(f'DROP DATABASE "{database}"')


_examples = iter(range(10**9))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(readings, min_size=1, max_size=12))
def test_random_readings_round_trip_through_real_influxdb(round_trip_store: InfluxV1Store, rows):
    store = round_trip_store
    # Each example gets field names of its own (a suffix), so examples cannot collide; one
    # value type per field (a second type is a field-type conflict, tested separately) and
    # one reading per point (a later one would overwrite it).
    suffix = f"~{next(_examples)}"
    kinds: dict[str, type] = {}
    points: dict[tuple, Reading] = {}
    for r in rows:
        r = r._replace(field=r.field + suffix)
        if kinds.setdefault(r.field, type(r.value)) is type(r.value):
            points[(r.asset, r.field, r.unit, r.source_time_ns)] = r
    rows = list(points.values())
    expected = []
    for r in rows:
        try:
            encode_reading(r)
            expected.append(r)
        except LineProtocolError:
            pass
    result = store.write(ReadingBatch.from_readings(rows))
    assert result.written == len(expected)
    assert len(result.rejected) == len(rows) - len(expected)
    by_series = defaultdict(list)
    for r in expected:
        by_series[(r.asset, r.field)].append(r)
    for (asset, field), want in by_series.items():
        got = store.readings(asset, field, T0 - 2 * 10**15, T0 + 2 * 10**15)
        want.sort(key=lambda r: (r.source_time_ns, r.unit))
        got.sort(key=lambda r: (r.source_time_ns, r.unit))
        assert len(got) == len(want), (asset, field)
        for g, w in zip(got, want, strict=True):
            assert _same(g, w), (g, w)
    assert set(by_series) <= set(store.list_series())


# --------------------------------------------------------------------- write semantics


def test_replay_is_idempotent(influx_database):
    batch = kiln_floats(500)
    with InfluxV1Store.from_url(influx_database) as store:
        assert store.write(batch).written == 500
        assert store.write(batch).written == 500  # the forwarder replays after a crash
        series = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + 10**15)
        counted = store.series(
            KILN, "zone1_tc1_temperature_c", T0, T0 + 10**15, window_ns=10**15, aggregate="count"
        )
    assert len(series) == 500
    assert counted.values.tolist() == [500.0]
    np.testing.assert_array_equal(series.values, batch.number)
    np.testing.assert_array_equal(series.time_ns, batch.source_time_ns)
    np.testing.assert_array_equal(series.quality, batch.quality)


def _conflict_batch(bad_fields: list[str]) -> tuple[ReadingBatch, set[tuple[str, int]]]:
    """Good float readings interleaved with integer readings on fields that hold floats."""
    rows, bad = [], set()
    for i in range(64):
        t = T0 + i * 10**9
        if i % 9 == 4:
            field = bad_fields[i % len(bad_fields)]
            rows.append(Reading(KILN, field, i, Quality.GOOD, t, t))
            bad.add((field, t))
        else:
            rows.append(Reading(KILN, "zone1_tc1_temperature_c", i + 0.5, Quality.GOOD, t, t))
    return ReadingBatch.from_readings(rows), bad


@pytest.mark.parametrize("bad_fields", [["gas_flow_m3_h"], ["gas_flow_m3_h", "air_flow_m3_h"]])
def test_partial_write_rejects_only_the_conflicting_points(influx_database, bad_fields):
    """InfluxDB 1.x writes the good points of a batch with a field-type conflict and answers
    400; the store must name exactly the refused readings. One conflicting field: InfluxDB's
    message names them all (one request). Two: the message names only the first, so the
    store bisects."""
    calls: list[httpx.Request] = []
    with InfluxV1Store.from_url(influx_database, counting_factory(calls)) as store:
        existing = [Reading(KILN, f, 1.25, Quality.GOOD, T0 - 10**9, T0) for f in bad_fields]
        assert store.write(ReadingBatch.from_readings(existing)).written == len(bad_fields)
        batch, bad = _conflict_batch(bad_fields)
        calls.clear()
        result = store.write(batch)
        assert {(r.reading.field, r.reading.source_time_ns) for r in result.rejected} == bad
        assert all("field type conflict" in r.reason for r in result.rejected)
        assert result.written == len(batch) - len(bad)
        writes = [c for c in calls if c.url.path == "/write"]
        assert len(writes) == 1 if len(bad_fields) == 1 else len(writes) > 2
        good = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)
        assert len(good) == len(batch) - len(bad)
        for field in bad_fields:  # the old float points are untouched, no int got in
            assert store.series(KILN, field, T0 - HOUR, T0 + HOUR).values.tolist() == [1.25]


def test_invalid_readings_are_rejected_without_losing_the_rest(influx_database):
    rows = [Reading(KILN, "zone1_tc1_temperature_c", 1.0 + i, 0, T0 + i, T0) for i in range(5)]
    rows[2] = rows[2]._replace(value=math.nan)
    rows[3] = rows[3]._replace(field="#comment")
    with InfluxV1Store.from_url(influx_database) as store:
        result = store.write(ReadingBatch.from_readings(rows))
        assert result.written == 3
        assert [r.reading.source_time_ns for r in result.rejected] == [T0 + 2, T0 + 3]
        got = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + 10)
    assert got.time_ns.tolist() == [T0, T0 + 1, T0 + 4]


def test_outage_raises_store_unavailable_then_recovers(influxdb: InfluxDB):
    influxdb.create_database("plant")
    batch = kiln_floats(100)
    with InfluxV1Store.from_url(influxdb.store_url("plant") + "?timeout=2") as store:
        assert store.write(batch.take(slice(0, 50))).written == 50
        influxdb.stop()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            store.write(batch.take(slice(50, 100)))
        with pytest.raises(StoreUnavailable):
            store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)
        with pytest.raises(StoreUnavailable):
            store.latest(KILN)
        influxdb.start()
        assert store.write(batch.take(slice(50, 100))).written == 50
        got = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)
    np.testing.assert_array_equal(got.values, batch.number)


def test_missing_database_is_an_error_unless_create_is_asked(influxdb_shared: InfluxDB):
    name = "new_" + uuid.uuid4().hex[:8]
    batch = kiln_floats(3)
    store = InfluxV1Store.from_url(influxdb_shared.store_url(name))
    with store, pytest.raises(DatabaseNotFound, match="create=true"):
        store.write(batch)
    with InfluxV1Store.from_url(influxdb_shared.store_url(name) + "?create=true") as store:
        assert store.write(batch).written == 3
        assert len(store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)) == 3
    influxdb_shared.query(f'DROP DATABASE "{name}"')


# --------------------------------------------------------------------- reads


def _reference_windows(t, v, q, window, aggregate):
    starts = t // window * window
    out_t, out_v, out_q = [], [], []
    for s in np.unique(starts):
        sel = starts == s
        x = v[sel]
        value = {
            "mean": x.mean(),
            "min": x.min(),
            "max": x.max(),
            "first": x[0],
            "last": x[-1],
            "count": float(len(x)),
            "sum": x.sum(),
        }[aggregate]
        out_t.append(s)
        out_v.append(value)
        out_q.append(q[sel].max())
    return np.array(out_t), np.array(out_v), np.array(out_q)


@pytest.mark.parametrize("aggregate", ["mean", "min", "max", "first", "last", "count", "sum"])
def test_downsampled_series_matches_numpy(influx_database, aggregate):
    batch = kiln_floats(1000, start=T0 + 123_456_789, step=7_000_000_001)
    window = 60_000_000_000
    start, end = T0 + 10 * window, T0 + 100 * window
    with InfluxV1Store.from_url(influx_database) as store:
        store.write(batch)
        got = store.series(
            KILN, "zone1_tc1_temperature_c", start, end, window_ns=window, aggregate=aggregate
        )
    t = batch.source_time_ns
    sel = (t >= start) & (t < end)
    want_t, want_v, want_q = _reference_windows(
        t[sel], batch.number[sel], batch.quality[sel], window, aggregate
    )
    np.testing.assert_array_equal(got.time_ns, want_t)
    assert got.time_ns.dtype == np.int64 and got.quality.dtype == np.uint8
    np.testing.assert_allclose(got.values, want_v, rtol=1e-12)
    np.testing.assert_array_equal(got.quality, want_q)


def test_boolean_text_and_integer_fields(influx_database):
    rows = []
    for i in range(20):
        t = T0 + i * 10**9
        rows.append(Reading(KILN, "burner_on", i % 3 == 0, Quality(i % 2), t, t))
        rows.append(Reading(KILN, "programme", f'bisque, "slow" #{i}\nstep', 0, t, t))
        rows.append(Reading(KILN, "cycle_count", 2**60 + i, 0, t, t))
    with InfluxV1Store.from_url(influx_database) as store:
        store.write(ReadingBatch.from_readings(rows))
        on = store.series(KILN, "burner_on", T0, T0 + HOUR)
        assert on.values.tolist() == [float(i % 3 == 0) for i in range(20)]
        share = store.series(
            KILN, "burner_on", T0, T0 + HOUR, window_ns=10 * 10**9, aggregate="mean"
        )
        assert share.values.tolist() == pytest.approx([4 / 10, 3 / 10])
        assert share.quality.tolist() == [1, 1]
        expected = {  # windows of 10 readings: i % 3 == 0 at i = 0,3,6,9 | 12,15,18
            "first": [1.0, 0.0],
            "last": [1.0, 0.0],
            "count": [10.0, 10.0],
            "sum": [4.0, 3.0],
            "min": [0.0, 0.0],
            "max": [1.0, 1.0],
        }
        for aggregate, want in expected.items():
            got = store.series(
                KILN, "burner_on", T0, T0 + HOUR, window_ns=10 * 10**9, aggregate=aggregate
            )
            assert got.values.tolist() == want, aggregate
            assert got.time_ns.tolist() == [T0, T0 + 10 * 10**9], aggregate
        text = store.series(KILN, "programme", T0, T0 + HOUR)
        assert text.values.dtype == object
        assert text.values.tolist() == [f'bisque, "slow" #{i}\nstep' for i in range(20)]
        last = store.series(
            KILN, "programme", T0, T0 + HOUR, window_ns=10 * 10**9, aggregate="last"
        )
        assert last.values.tolist() == ['bisque, "slow" #9\nstep', 'bisque, "slow" #19\nstep']
        with pytest.raises(ValueError, match="text field"):
            store.series(KILN, "programme", T0, T0 + HOUR, window_ns=10**9, aggregate="mean")
        count = store.series(KILN, "cycle_count", T0, T0 + HOUR)
        assert count.values.tolist() == [float(2**60 + i) for i in range(20)]
        latest = store.latest(KILN)
    assert latest["cycle_count"].value == 2**60 + 19  # exact int, not via float
    assert latest["burner_on"] == rows[-3]
    assert latest["programme"] == rows[-2]


def test_latest_and_list_series_keep_assets_apart(influx_database):
    a = "xinghai/plant-1/firing-shop/kiln-1"
    a_longer = "xinghai/plant-1/firing-shop/kiln-10"
    b = "xinghaixyz/plant-1/firing-shop/kiln-1"
    dot = "xing.ai/plant-1/firing-shop/kiln-1"
    rows = [
        Reading(a, "zone1_tc1_temperature_c", 1000.0, 0, T0, T0, "°C"),
        Reading(a, "zone1_tc1_temperature_c", 1001.0, 1, T0 + 5, T0 + 6, "°C"),
        Reading(a, "gas_flow_m3_h", 12.5, 0, T0 + 1, T0),
        Reading(a_longer, "zone1_tc1_temperature_c", 9.0, 0, T0 + 9, T0),
        Reading(b, "press_force_kn", 3.0, 0, T0, T0),
        Reading(dot, "press_force_kn", 4.0, 0, T0, T0),
    ]
    with InfluxV1Store.from_url(influx_database) as store:
        store.write(ReadingBatch.from_readings(rows))
        latest = store.latest(a)
        assert latest == {"zone1_tc1_temperature_c": rows[1], "gas_flow_m3_h": rows[2]}
        assert store.latest("nobody/x/y/z") == {}
        assert store.list_series("xinghai/") == [
            (a, "gas_flow_m3_h"),
            (a, "zone1_tc1_temperature_c"),
            (a_longer, "zone1_tc1_temperature_c"),
        ]
        assert store.list_series("xing.ai/") == [(dot, "press_force_kn")]  # '.' is literal
        assert len(store.list_series()) == 5
        assert store.series(a, "no_such_field", T0, T0 + HOUR).time_ns.tolist() == []


def test_gzip_option_compresses_writes_and_reads(influx_database):
    calls: list[httpx.Request] = []
    batch = kiln_floats(300)
    with InfluxV1Store.from_url(influx_database + "?gzip=1", counting_factory(calls)) as store:
        assert store.write(batch).written == 300
        got = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)
    np.testing.assert_array_equal(got.values, batch.number)
    write = next(c for c in calls if c.url.path == "/write")
    assert write.headers["Content-Encoding"] == "gzip" and len(write.content) < 300 * 50
    assert all(c.headers["Accept-Encoding"] == "gzip" for c in calls)
    plain: list[httpx.Request] = []
    with InfluxV1Store.from_url(influx_database, counting_factory(plain)) as store:
        store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + HOUR)
    assert all(c.headers["Accept-Encoding"] == "identity" for c in plain)


def test_precision_option_truncates_stored_times(influx_database):
    t = T0 + 1_234_567_891
    batch = ReadingBatch.from_floats(KILN, "gas_flow_m3_h", [12.5], [t])
    with InfluxV1Store.from_url(influx_database + "?precision=ms") as store:
        assert store.write(batch).written == 1
        got = store.series(KILN, "gas_flow_m3_h", T0, T0 + HOUR)
    assert got.time_ns.tolist() == [t // 1_000_000 * 1_000_000]


def test_readings_pages_oldest_first_and_wide_ranges_are_fine(influx_database):
    batch = kiln_floats(10)
    with InfluxV1Store.from_url(influx_database) as store:
        store.write(batch)
        first = store.readings(KILN, "zone1_tc1_temperature_c", -(2**63), 2**63, limit=4)
        assert [r.source_time_ns for r in first] == batch.source_time_ns[:4].tolist()
        rest = store.readings(
            KILN, "zone1_tc1_temperature_c", first[-1].source_time_ns + 1, 2**70, limit=100
        )
        assert [r.value for r in first + rest] == batch.number.tolist()
        whole = store.series(KILN, "zone1_tc1_temperature_c", np.int64(-(2**63)), 2**64)
        assert len(whole) == 10
        with pytest.raises(TypeError):
            store.series(KILN, "zone1_tc1_temperature_c", 0.5, 2**64)  # type: ignore[arg-type]
