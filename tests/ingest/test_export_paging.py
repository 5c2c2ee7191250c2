"""``kilnworks export`` reads page by page (``iter_readings``, ``ingest.paging``): on a real
InfluxDB 1.x and on SQLite, an export with a small page size, across many pages, is byte for
byte the unpaged export (one query per series) and the readings that were written, also where
points of one series share a time exactly at a page boundary (InfluxDB keeps one point per
``unit`` tag) and on an InfluxDB whose ``max-row-limit`` cuts non-chunked answers short;
memory is bounded by the page size, not by the series."""

from __future__ import annotations

import csv
import io
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from core.cli import main as kilnworks
from core.reading import Quality, Reading, ReadingBatch
from ingest.cli_export import export_csv
from ingest.csvio import write_header, write_rows
from ingest.stores import open_store
from tests.ingest._helpers import KILN, T0
from tests.servers import InfluxDB

pytestmark = pytest.mark.integration

S = 1_000_000_000
PRESS = "xinghai/plant-1/press-shop/press-4"
UNPAGED = 10**9  # one query per series
PAGE_SIZES = (1, 2, 3, 5, 7, 64)


def several_series(n: int = 40) -> list[Reading]:
    """Five series of every value kind on one time grid (they share every timestamp)."""
    out = []
    for i in range(n):
        t = T0 + i * S
        out += [
            Reading(KILN, "zone1_tc1_temperature_c", 20.0 + i * 0.1, Quality.GOOD, t, t + 5, "°C"),
            Reading(KILN, "burner_on", i % 3 == 0, Quality.GOOD, t, t + 6),
            Reading(KILN, "programme", f'bisque "{i}",\nslow', Quality(i % 3), t, t + 7),
            Reading(PRESS, "cycle_count", 10**12 + i, Quality.UNCERTAIN, t, t + 8),
            Reading(PRESS, "zone1_tc1_temperature_c", -0.0 if i == 0 else 1e-300 * i,
                    Quality.GOOD, t, t + 9, "K"),
        ]  # fmt: skip
    return out


def shared_times(n_times: int = 30) -> list[Reading]:
    """One series (asset + field) holding 1, 2 or 3 points per time, one per unit: groups of
    points sharing a time fall on every page boundary of the sizes tested."""
    out = []
    for i in range(n_times):
        t = T0 + i * 1000
        for k, unit in enumerate(["°C", "", "K"][: 1 + (i * 7) % 3]):
            out.append(Reading(KILN, "t_c", 100.0 * i + k, Quality(k), t, t + k, unit))
    return out


def expected_csv(readings: list[Reading]) -> str:
    """What export must write: series by series (asset, field), oldest first, points sharing
    a time by unit."""
    out = io.StringIO(newline="")
    write_rows(
        write_header(out),
        sorted(readings, key=lambda r: (r.asset, r.field, r.source_time_ns, r.unit)),
        time_format="ns",
    )
    return out.getvalue()


def export(store: object, page_size: int, **kwargs: object) -> str:
    out = io.StringIO(newline="")
    export_csv(store, out, time_format="ns", page_size=page_size, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def count_reads(store: object, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the store's page queries (one per call of its ``_raw_readings``)."""
    calls: list[int] = []
    original = store._raw_readings  # type: ignore[attr-defined]

    def counted(*args: object) -> object:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(store, "_raw_readings", counted)
    return calls


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[object]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("influx_database")
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


def test_paged_export_is_the_unpaged_export_byte_for_byte(
    store: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = several_series()
    assert store.write(ReadingBatch.from_readings(written)).written == len(written)  # type: ignore[attr-defined]
    unpaged = export(store, UNPAGED)
    assert unpaged == expected_csv(written)
    calls = count_reads(store, monkeypatch)
    for size in PAGE_SIZES:
        calls.clear()
        assert export(store, size) == unpaged, size
        assert len(calls) >= len(written) // size  # it did page
    # a window that starts and ends inside the series
    window = dict(asset="xinghai/plant-1/firing-shop", start_ns=T0 + 3 * S, end_ns=T0 + 17 * S)
    assert export(store, 4, **window) == export(store, UNPAGED, **window)
    assert export(store, 4, **window) == expected_csv(
        [r for r in written if r.asset == KILN and T0 + 3 * S <= r.source_time_ns < T0 + 17 * S]
    )


def test_points_sharing_a_time_at_page_boundaries_are_neither_skipped_nor_repeated(
    influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = shared_times() + several_series(10)
    store = open_store(influx_database)
    try:
        assert store.write(ReadingBatch.from_readings(written)).written == len(written)
        expected = expected_csv(written)
        assert export(store, UNPAGED) == expected
        calls = count_reads(store, monkeypatch)
        for size in range(1, 9):
            calls.clear()
            got = export(store, size)
            assert got == expected, size
            records = list(csv.reader(io.StringIO(got, newline="")))
            assert len(records) == len({tuple(r) for r in records}) == len(written) + 1
            assert len(calls) >= len(written) // size
        series = [r for r in written if r.field == "t_c"]
        end = T0 + 10**12
        assert store.readings(KILN, "t_c", T0, end) == expected_order(series)
        for size in (1, 2, 4):
            paged = list(store.iter_readings(KILN, "t_c", T0, end, page_size=size))
            assert paged == expected_order(series)
    finally:
        store.close()


def expected_order(readings: list[Reading]) -> list[Reading]:
    return sorted(readings, key=lambda r: (r.source_time_ns, r.unit))


def test_answers_in_many_chunks_are_joined(
    influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v1 store reads chunked JSON; with 3 rows per chunk, every series, every page and
    every multi-statement answer (``latest``) arrives in pieces."""
    import ingest.influx_v1

    written = shared_times(10) + several_series(8)
    store = open_store(influx_database)
    try:
        assert store.write(ReadingBatch.from_readings(written)).written == len(written)
        series, latest = store.list_series(), store.latest(KILN)
        monkeypatch.setattr(ingest.influx_v1, "CHUNK_ROWS", 3)
        assert store.list_series() == series and store.latest(KILN) == latest
        for size in (2, 5, UNPAGED):
            assert export(store, size) == expected_csv(written), size
        got = store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + 10**12)
        assert got.values.tolist() == [20.0 + i * 0.1 for i in range(8)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def row_limited_influxdb() -> Iterator[InfluxDB]:
    """An InfluxDB whose non-chunked answers stop at 8 rows ([http] max-row-limit)."""
    server = InfluxDB(max_row_limit=8)
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_max_row_limit_cuts_nothing_short(row_limited_influxdb: InfluxDB) -> None:
    """Non-chunked answers stop at 8 rows there (silently but for a ``partial`` flag); the
    store asks for chunked answers, which the limit does not apply to."""
    url = row_limited_influxdb.store_url(row_limited_influxdb.create_database("limited"))
    written = shared_times(20) + several_series(12)
    written += [Reading(PRESS, f"f{i}", 1.0, Quality.GOOD, T0, T0) for i in range(9)]
    written += [Reading(KILN, "crowded", float(k), Quality.GOOD, T0, T0, u) for k, u in
                enumerate("abcdefghi")]  # fmt: skip  # 9 points at one time
    store = open_store(url)
    try:
        assert store.write(ReadingBatch.from_readings(written)).written == len(written)
        assert len(store.list_series()) == 6 + 9 + 1  # more series than one answer's 8 rows
        expected = expected_csv(written)
        for size in (50_000, 3, 8, 9):
            assert export(store, size) == expected, size
        assert store.readings(KILN, "t_c", T0, T0 + 10**12) == expected_order(
            [r for r in written if r.field == "t_c"]
        )
    finally:
        store.close()


def _peak_export_bytes(store: object, field: str, page_size: int) -> int:
    with open(os.devnull, "w", newline="") as sink:
        tracemalloc.start()
        try:
            export_csv(store, sink, fields=[field], page_size=page_size)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak


def test_export_memory_is_bounded_by_the_page_not_the_series(influx_database: str) -> None:
    store = open_store(influx_database)
    try:
        for field, n in (("small", 4_000), ("large", 20_000)):  # five times the rows
            times = [T0 + i * S for i in range(n)]
            batch = ReadingBatch.from_floats(KILN, field, [float(i) for i in range(n)], times)
            assert store.write(batch).written == n
        # Warm up first. The peak then levels off within some dozens of pages (httpx responses
        # wait in reference cycles for the garbage collector): both series are past that.
        with open(os.devnull, "w", newline="") as sink:
            assert export_csv(store, sink, fields=["small"], page_size=100) == 4_000
        small = _peak_export_bytes(store, "small", page_size=100)
        large = _peak_export_bytes(store, "large", page_size=100)
        unpaged = _peak_export_bytes(store, "large", page_size=UNPAGED)
    finally:
        store.close()
    assert large < small * 1.5, (small, large)
    assert unpaged > large * 3, (large, unpaged)  # the test can tell paged from unpaged


def test_cli_page_size(tmp_path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path}/kw.db"
    store = open_store(url)
    store.write(ReadingBatch.from_readings(several_series(5)))
    store.close()
    assert kilnworks(["export", "--store", url, "--time-format", "ns"]) == 0
    default = capsys.readouterr().out
    assert kilnworks(["export", "--store", url, "--time-format", "ns", "--page-size", "2"]) == 0
    assert capsys.readouterr().out == default
    with pytest.raises(SystemExit) as exit_:
        kilnworks(["export", "--store", url, "--page-size", "0"])
    assert exit_.value.code == 2
    assert "--page-size: expected an integer >= 1, not '0'" in capsys.readouterr().err


DAY = 86_400 * S


def gappy_series() -> list[Reading]:
    """One series over many weekly shards: runs of points with gaps of days to weeks, groups
    of 1-3 points sharing a time (one per unit), and, with a page size of 5, short windows
    that end exactly at a group (see test_paging's window-end test, here in days)."""
    times = [T0 + d * DAY for d in (0, 1, 2, 3, 4, 5, 9, 24)]
    times += [T0 + 60 * DAY + i * S for i in range(30)]  # a dense run
    times += [T0 + 140 * DAY, T0 + 141 * DAY, T0 + 300 * DAY]
    out = []
    for i, t in enumerate(times):
        units = ["°C", "", "K"][: 1 + (i * 7) % 3] if i >= 6 else ["°C"]
        if t == T0 + 9 * DAY:
            units = ["°C", "K"]
        for k, unit in enumerate(units):
            out.append(Reading(KILN, "t_c", 10.0 * i + k, Quality(k), t, t + k, unit))
    return out


def test_bounded_windows_over_many_shards_skip_and_repeat_nothing(
    influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v1 store bounds each page's time range (ingest.paging, windowed): across gaps,
    empty and short windows and window ends that fall exactly on a group of points sharing a
    time, every page size exports exactly what was written."""
    written = gappy_series()
    store = open_store(influx_database)
    try:
        assert store.write(ReadingBatch.from_readings(written)).written == len(written)
        expected = expected_csv(written)
        assert export(store, UNPAGED) == expected
        ranges: list[tuple[int, int]] = []
        original = store._raw_readings  # type: ignore[attr-defined]

        def recorded(asset: str, field: str, lo: int, hi: int, limit: int | None) -> object:
            ranges.append((lo, hi))
            return original(asset, field, lo, hi, limit)

        monkeypatch.setattr(store, "_raw_readings", recorded)
        for size in (*range(1, 9), 13):
            ranges.clear()
            assert export(store, size) == expected, size
            ends = {hi for _, hi in ranges}
            assert len(ends) > 2, size  # it did bound the windows, not every query to the end
        ranges.clear()
        assert list(store.iter_readings(KILN, "t_c", T0, T0 + 400 * DAY, page_size=5)) == (
            expected_order(written)
        )
        # the windows of page size 5 end exactly on the group at day 9 and the point at 24
        assert (T0 + 4 * DAY, T0 + 9 * DAY) in ranges
        assert (T0 + 9 * DAY, T0 + 24 * DAY) in ranges
    finally:
        store.close()
