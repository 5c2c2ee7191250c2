"""One contract, every backend: the embedded SQLite store and a real InfluxDB 1.x (v1 API).

Each test writes through ``store.write`` and reads through ``series`` / ``latest`` /
``list_series`` only, so a backend passes by doing what ``ingest.contracts.Store`` promises,
not by sharing code with another backend.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from core.reading import Quality, Reading, ReadingBatch
from ingest.contracts import Store
from ingest.stores import open_store
from tests.ingest._helpers import FIELD, KILN, T0, mixed

S = 1_000_000_000
BACKENDS = ["sqlite"]
if importlib.util.find_spec("ingest.influx_v1") is not None:
    BACKENDS.append("influxdb")

# Names that break naive quoting in SQL, InfluxQL and line protocol.
ODD_ASSET = "xing hai/plant,1/line=\"A\"/kiln 'β' \\2"
ODD_FIELD = 'zone 1,tc=2 "温度"_c'


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("influx_database")
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


def write(store: Store, readings: list[Reading]) -> None:
    result = store.write(ReadingBatch.from_readings(readings))
    assert result.rejected == [] and result.written == len(readings)


def ramp(field: str, n: int, *, start_s: int = 0, asset: str = KILN) -> list[Reading]:
    return [
        Reading(asset, field, 20.0 + i * 1.5, Quality.GOOD, T0 + (start_s + i) * S, T0)
        for i in range(n)
    ]


def test_every_value_kind_round_trips_through_latest(store: Store) -> None:
    readings = mixed()
    write(store, readings)
    latest = store.latest(KILN)
    assert latest == {r.field: r for r in readings}
    assert type(latest["cycle_count"].value) is int
    assert type(latest["burner_on"].value) is bool


def test_series_values_as_numpy(store: Store) -> None:
    write(store, mixed())
    far = T0 + 3600 * S
    temps = store.series(KILN, FIELD, T0, far)
    assert temps.values.dtype == np.float64 and temps.time_ns.dtype == np.int64
    assert list(temps.values) == [1234.5] and list(temps.time_ns) == [T0]
    assert list(store.series(KILN, "cycle_count", T0, far).values) == [7.0]
    assert list(store.series(KILN, "burner_on", T0, far).values) == [1.0]
    text = store.series(KILN, "programme", T0, far)
    assert list(text.values) == ['bisque 1320 °C, "slow"']
    assert list(text.quality) == [Quality.BAD]


def test_odd_names_and_exact_floats_round_trip(store: Store) -> None:
    values = [0.1 + 0.2, -0.0, 1e-300, 1.7976931348623157e308, 5e-324, 123456789.123456789]
    readings = [
        Reading(ODD_ASSET, ODD_FIELD, v, Quality.UNCERTAIN, T0 + i * 7, T0 + 1, "°C")
        for i, v in enumerate(values)
    ]
    write(store, readings)
    got = store.series(ODD_ASSET, ODD_FIELD, T0, T0 + S)
    assert [v.hex() for v in got.values] == [v.hex() for v in values]
    assert list(got.time_ns) == [T0 + i * 7 for i in range(len(values))]
    assert store.list_series() == [(ODD_ASSET, ODD_FIELD)]
    assert store.latest(ODD_ASSET)[ODD_FIELD] == readings[-1]


def test_ranges_are_half_open_with_nanosecond_edges(store: Store) -> None:
    write(store, ramp(FIELD, 10))
    got = store.series(KILN, FIELD, T0 + 2 * S, T0 + 5 * S)
    assert list(got.time_ns) == [T0 + 2 * S, T0 + 3 * S, T0 + 4 * S]
    assert list(got.values) == [23.0, 24.5, 26.0]
    assert len(store.series(KILN, FIELD, T0 + 2 * S + 1, T0 + 3 * S)) == 0
    assert len(store.series(KILN, FIELD, T0 + 5 * S, T0 + 5 * S)) == 0


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("mean", [20.0, 0.0, 7.5]),
        ("min", [10.0, -5.0, 7.5]),
        ("max", [30.0, 5.0, 7.5]),
        ("first", [10.0, -5.0, 7.5]),
        ("last", [20.0, 5.0, 7.5]),
        ("count", [3, 2, 1]),
        ("sum", [60.0, 0.0, 7.5]),
    ],
)
def test_downsampling_windows_are_aligned_to_epoch_multiples(
    store: Store, aggregate: str, expected: list[float]
) -> None:
    # T0 is a multiple of 10 s. The query starts at T0+1s (inside the first window), so the
    # point at T0 is out; window [T0+20s, T0+30s) is empty and left out.
    points = {0: 1000.0, 1: 10.0, 3: 30.0, 9: 20.0, 12: -5.0, 19: 5.0, 35: 7.5}
    write(
        store,
        [Reading(KILN, FIELD, v, Quality.GOOD, T0 + s * S, T0) for s, v in points.items()],
    )
    got = store.series(KILN, FIELD, T0 + S, T0 + 40 * S, window_ns=10 * S, aggregate=aggregate)
    assert list(got.time_ns) == [T0, T0 + 10 * S, T0 + 30 * S]
    assert np.allclose(got.values, expected, rtol=0, atol=1e-9)


def test_downsampled_quality_is_the_worst_in_the_window(store: Store) -> None:
    readings = ramp(FIELD, 4)
    readings[2] = readings[2]._replace(quality=Quality.BAD)
    readings[3] = readings[3]._replace(quality=Quality.UNCERTAIN)
    write(store, readings)
    got = store.series(KILN, FIELD, T0, T0 + 4 * S, window_ns=2 * S, aggregate="mean")
    assert list(got.quality) == [Quality.GOOD, Quality.BAD]


def test_latest_is_the_most_recent_per_field_whatever_the_write_order(store: Store) -> None:
    late = ramp(FIELD, 5)
    write(store, [late[4], late[0], late[2]])
    write(store, [late[1], late[3]])
    write(store, ramp("gas_flow_m3_h", 3, start_s=-10))
    latest = store.latest(KILN)
    assert latest[FIELD] == late[4]
    assert latest["gas_flow_m3_h"].source_time_ns == T0 - 8 * S
    assert store.latest("xinghai/plant-1/firing-shop/kiln-9") == {}


def test_list_series_sorted_and_by_prefix(store: Store) -> None:
    write(store, ramp("b_c", 1, asset="xinghai/p1/l1/kiln-1"))
    write(store, ramp("a_c", 1, asset="xinghai/p1/l1/kiln-1"))
    write(store, ramp("a_c", 1, asset="xinghaiX/p1/l1/kiln-1"))
    write(store, ramp("a_c", 1, asset="dongfang/p1/l1/press-1"))
    assert store.list_series() == [
        ("dongfang/p1/l1/press-1", "a_c"),
        ("xinghai/p1/l1/kiln-1", "a_c"),
        ("xinghai/p1/l1/kiln-1", "b_c"),
        ("xinghaiX/p1/l1/kiln-1", "a_c"),
    ]
    assert store.list_series("xinghai/") == [
        ("xinghai/p1/l1/kiln-1", "a_c"),
        ("xinghai/p1/l1/kiln-1", "b_c"),
    ]
    assert store.list_series("nobody/") == []


def test_replay_is_idempotent_and_a_rewrite_overwrites(store: Store) -> None:
    readings = ramp(FIELD, 50)
    write(store, readings)
    write(store, readings)  # a replay after a crash between write and ack
    got = store.series(KILN, FIELD, T0, T0 + 100 * S)
    assert len(got) == 50
    count = store.series(KILN, FIELD, T0, T0 + 100 * S, window_ns=1000 * S, aggregate="count")
    assert list(count.values) == [50]
    write(store, [readings[7]._replace(value=-1.0)])
    assert store.series(KILN, FIELD, T0 + 7 * S, T0 + 8 * S).values.tolist() == [-1.0]


def test_empty_results_are_not_errors(store: Store) -> None:
    assert len(store.series(KILN, FIELD, T0, T0 + S)) == 0
    assert len(store.series(KILN, FIELD, T0, T0 + S, window_ns=S, aggregate="max")) == 0
    assert store.latest(KILN) == {}
    assert store.list_series() == []
    write(store, ramp(FIELD, 3))
    assert len(store.series(KILN, FIELD, T0 + 100 * S, T0 + 200 * S)) == 0
    assert len(store.series(KILN, "other_c", T0, T0 + 200 * S)) == 0


def test_invalid_readings_are_rejected_not_written(store: Store) -> None:
    good = ramp(FIELD, 2)
    bad = Reading(KILN, FIELD, float("nan"), Quality.GOOD, T0 + 9 * S, T0)
    result = store.write(ReadingBatch.from_readings([good[0], bad, good[1]]))
    assert result.written == 2
    assert [r.reading.source_time_ns for r in result.rejected] == [T0 + 9 * S]
    assert len(store.series(KILN, FIELD, T0, T0 + 100 * S)) == 2
