"""What the embedded store does beyond the shared contract: files, URLs, threads, raw reads;
and how stores are named by URL (``ingest.stores``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from core.reading import Quality, Reading, ReadingBatch
from ingest.store_sqlite import SQLiteStore
from ingest.stores import StoreURLError, open_store, redact
from tests.ingest._helpers import FIELD, KILN, T0, floats, mixed

S = 1_000_000_000


def test_points_survive_reopen_and_rewrites_replace(tmp_path: Path) -> None:
    path = tmp_path / "kw.db"
    with_store = SQLiteStore(path)
    with_store.write(floats(100))
    with_store.close()
    store = SQLiteStore(path)
    store.write(floats(10, start=95))  # overlaps 95..99, adds 100..104
    assert store.count() == 105
    got = store.series(KILN, FIELD, T0, T0 + 1000 * S)
    assert got.values.tolist() == [1000.0 + i for i in range(105)]
    store.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///:memory:", ":memory:"), ("sqlite://", ":memory:"),
     ("sqlite:///data/kw.db", "data/kw.db"), ("sqlite:////var/lib/kw.db", "/var/lib/kw.db")],
)  # fmt: skip
def test_sqlite_url_paths_follow_the_sqlalchemy_convention(
    url: str, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if path.startswith("/"):
        path = str(tmp_path) + path
        url = "sqlite:///" + path
    store = open_store(url)
    assert isinstance(store, SQLiteStore) and store.path == path
    store.write(floats(1))
    if path != ":memory:":
        assert os.path.exists(path)
    store.close()


def test_open_store_names_the_bad_url_without_its_secrets() -> None:
    with pytest.raises(StoreURLError) as info:
        open_store("postgres://admin:hunter2@db:5432/plant?token=abc")
    message = str(info.value)
    assert "unknown scheme 'postgres'" in message and "sqlite://" in message
    assert "hunter2" not in message and "abc" not in message
    with pytest.raises(StoreURLError, match="expected scheme://"):
        open_store("kilnworks.db")


def test_open_store_influx_schemes_reach_their_backends() -> None:
    v1 = open_store("influxdb://kiln:pw@127.0.0.1:1/plant?timeout=0.5")
    assert type(v1).__name__ == "InfluxV1Store"
    v1.close()
    v2 = open_store("influxdb2://127.0.0.1:1/?org=xinghai&bucket=plant&token=t0ken")
    assert type(v2).__name__ == "InfluxV2Writer"
    v2.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("influxdb://bob:s3cret@h:8086/db?token=abc&rp=autogen",
         "influxdb://bob:***@h:8086/db?token=***&rp=autogen"),
        ("influxdb2://h:8086/?org=o&bucket=b&token=xyz", "influxdb2://h:8086/?org=o&bucket=b&token=***"),
        ("sqlite:////var/lib/kw.db", "sqlite:////var/lib/kw.db"),
        ("influxdb://bob@h/db", "influxdb://bob@h/db"),
    ],
)  # fmt: skip
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "kw.db")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(10):
                store.write(
                    floats(100, start=(k * 10 + j) * 100, field=f"zone{k}_tc1_temperature_c")
                )
                store.latest(KILN)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 4000
    assert len(store.list_series(KILN)) == 4


def test_raw_readings_keep_types_and_page_with_limit() -> None:
    store = SQLiteStore()
    store.write(ReadingBatch.from_readings(mixed()))
    (r,) = store.readings(KILN, "cycle_count", T0, T0 + S).to_readings()
    assert r == mixed()[1]
    store.write(floats(10))
    page = store.readings(KILN, FIELD, T0, T0 + 100 * S, limit=4)
    assert [x.value for x in page.to_readings()] == [1000.0, 1001.0, 1002.0, 1003.0]


def test_a_series_that_mixes_numbers_and_text_reads_as_objects() -> None:
    store = SQLiteStore()
    store.write(ReadingBatch.from_readings([
        Reading(KILN, "state", 1.5, Quality.GOOD, T0, T0),
        Reading(KILN, "state", "firing", Quality.GOOD, T0 + 1, T0),
    ]))  # fmt: skip
    got = store.series(KILN, "state", T0, T0 + 2)
    assert got.values.dtype == object and got.values.tolist() == [1.5, "firing"]
    assert store.series(
        KILN, "state", T0, T0 + 2, window_ns=S, aggregate="last"
    ).values.tolist() == ["firing"]
    with pytest.raises(ValueError, match="numeric field"):
        store.series(KILN, "state", T0, T0 + 2, window_ns=S, aggregate="mean")


def test_bad_downsampling_arguments_are_clear_errors() -> None:
    store = SQLiteStore()
    store.write(floats(3))
    with pytest.raises(ValueError, match="aggregate 'median'"):
        store.series(KILN, FIELD, T0, T0 + 9 * S, window_ns=S, aggregate="median")
    with pytest.raises(ValueError, match="window_ns"):
        store.series(KILN, FIELD, T0, T0 + 9 * S, window_ns=0)


def test_downsampling_negative_times_floors_to_the_window() -> None:
    store = SQLiteStore()
    store.write(ReadingBatch.from_floats(KILN, FIELD, np.array([1.0, 2.0, 3.0]),
                                         np.array([-15, -5, 5]), received_time_ns=0))  # fmt: skip
    got = store.series(KILN, FIELD, -100, 100, window_ns=10, aggregate="sum")
    assert got.time_ns.tolist() == [-20, -10, 0] and got.values.tolist() == [1.0, 2.0, 3.0]


def test_two_stores_on_one_file_as_two_processes_would(tmp_path: Path) -> None:
    # Each SQLiteStore has its own connections and caches, like the agent and the API do.
    agent, api = SQLiteStore(tmp_path / "kw.db"), SQLiteStore(tmp_path / "kw.db")
    agent.write(floats(5))
    api.write(floats(5, start=5))  # the series exists now, created by the other "process"
    assert len(agent.series(KILN, FIELD, T0, T0 + 100 * S)) == 10
    api.write(ReadingBatch.from_readings([Reading(KILN, "mode", "soak", Quality.GOOD, T0, T0)]))
    agent.write(ReadingBatch.from_readings([Reading(KILN, "mode", 1.0, Quality.GOOD, T0 + 1, T0)]))
    assert api.series(KILN, "mode", T0, T0 + 2).values.tolist() == ["soak", 1.0]
    assert agent.series(KILN, "mode", T0, T0 + 2).values.tolist() == ["soak", 1.0]
    assert agent.readings(KILN, "mode", T0, T0 + 2).to_readings()[0].value == "soak"
    agent.close()
    api.close()


def test_a_file_locked_by_another_process_is_unavailable_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from ingest import store_sqlite
    from ingest.contracts import StoreUnavailable

    monkeypatch.setattr(store_sqlite, "BUSY_TIMEOUT_S", 0.05)
    store = SQLiteStore(tmp_path / "kw.db")
    other = sqlite3.connect(tmp_path / "kw.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write(floats(3))
        assert len(store.series(KILN, FIELD, T0, T0 + 10 * S)) == 0  # reads still work (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.write(floats(3)).written == 3
    store.close()


@pytest.mark.parametrize("aggregate", ["mean", "min", "max", "sum", "count"])
def test_sql_aggregation_agrees_with_the_numpy_reference(aggregate: str) -> None:
    from ingest.downsample import downsample

    rng = np.random.default_rng(7)
    n = 2000
    times = np.sort(rng.choice(np.arange(-50_000, 50_000), size=n, replace=False))
    store = SQLiteStore()
    store.write(
        ReadingBatch.from_floats(
            KILN, FIELD, rng.normal(900, 300, n), times, quality=rng.integers(0, 3, n),
            received_time_ns=0,
        )
    )  # fmt: skip
    store.write(ReadingBatch.from_readings([Reading(KILN, FIELD, 7, Quality.GOOD, 60_001, 0)]))
    got = store.series(KILN, FIELD, -40_000, 70_000, window_ns=1_000, aggregate=aggregate)
    want = downsample(store.series(KILN, FIELD, -40_000, 70_000), 1_000, aggregate)
    assert got.time_ns.tolist() == want.time_ns.tolist()
    np.testing.assert_allclose(got.values, want.values, rtol=1e-12)
    assert got.quality.tolist() == want.quality.tolist()
    assert got.values.dtype == np.float64
