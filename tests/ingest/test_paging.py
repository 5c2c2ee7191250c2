"""``ingest.paging.pages_by_time`` against a fake store that holds several points per time
(like InfluxDB, one per unit tag): the pages, joined, are exactly the rows, whatever the page
size; each page is bounded; with ``windowed=True`` (InfluxDB) the same, each query's range
bounded too. The real stores are tested in ``test_export_paging.py``."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.paging import check_page_size, pages_by_time

Row = tuple[int, str]  # (time, unit): unique, like an InfluxDB point of one asset and field


class FakeStore:
    """Rows sorted by (time, unit), read like ``time >= start AND time < end LIMIT n``."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = sorted(set(rows))
        self.times = [t for t, _ in self.rows]
        self.reads: list[tuple[int, int, int | None]] = []

    def read(self, start: int, end: int, limit: int | None) -> list[Row]:
        self.reads.append((start, end, limit))
        lo, hi = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        return self.rows[lo:hi][:limit]


def time_of(row: Row) -> int:
    return row[0]


_ROWS = st.lists(st.tuples(st.integers(-5, 40), st.sampled_from(["", "K", "°C", "degC"])))


@given(
    rows=_ROWS,
    page_size=st.integers(1, 12),
    bounds=st.tuples(st.integers(-10, 45), st.integers(-10, 45)),
)
def test_pages_join_to_exactly_the_rows_in_range(
    rows: list[Row], page_size: int, bounds: tuple[int, int]
) -> None:
    store = FakeStore(rows)
    start, end = bounds
    pages = list(pages_by_time(store.read, start, end, page_size, time_of=time_of))
    expected = [r for r in store.rows if start <= r[0] < end]
    assert [r for page in pages for r in page] == expected  # nothing skipped, nothing twice
    assert all(pages)
    by_time: dict[int, int] = {}
    for r in expected:
        by_time[r[0]] = by_time.get(r[0], 0) + 1
    for page in pages:
        # bounded by the page size, or one whole group of points sharing a time
        assert len(page) <= page_size or len({t for t, _ in page}) == 1
        # a group of points sharing a time is never split across pages
        assert all(sum(t == time for t, _ in page) == by_time[time] for time, _ in page)
    assert len(store.reads) <= 2 * len(expected) + 1


def test_a_group_larger_than_the_page_is_read_whole_and_paging_goes_on() -> None:
    rows = [(1, "a"), (2, "a"), (2, "b"), (2, "c"), (2, "d"), (3, "a")]
    store = FakeStore(rows)
    pages = list(pages_by_time(store.read, 0, 10, 2, time_of=time_of))
    assert pages == [[(1, "a")], [(2, "a"), (2, "b"), (2, "c"), (2, "d")], [(3, "a")]]
    assert (2, 3, None) in store.reads  # exactly the time 2, whole


def test_empty_and_reversed_ranges_read_nothing() -> None:
    store = FakeStore([(1, "")])
    assert list(pages_by_time(store.read, 5, 5, 10, time_of=time_of)) == []
    assert list(pages_by_time(store.read, 5, 1, 10, time_of=time_of)) == []
    assert store.reads == []


@pytest.mark.parametrize(("size", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError)])
def test_page_size_must_be_a_positive_int(size: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_page_size(size)  # type: ignore[arg-type]


# Sparse times with gaps of every length, so that windows come back empty, short and full,
# and window ends fall on times that hold groups of points.
_SPARSE = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 40), st.integers(0, 10**6), st.sampled_from([100, 200, 10**5])),
        st.sampled_from(["", "K", "°C"]),
    )
)


@given(rows=_SPARSE, page_size=st.integers(1, 12), start=st.integers(-(10**6), 50))
def test_windowed_pages_join_to_exactly_the_rows_in_range(
    rows: list[Row], page_size: int, start: int
) -> None:
    store = FakeStore(rows)
    end = 2 * 10**6
    pages = list(pages_by_time(store.read, start, end, page_size, time_of=time_of, windowed=True))
    expected = [r for r in store.rows if start <= r[0] < end]
    assert [r for page in pages for r in page] == expected  # nothing skipped, nothing twice
    assert all(pages)
    for page in pages:
        assert len(page) <= page_size or len({t for t, _ in page}) == 1
        # a group of points sharing a time is never split across pages (nor windows)
        assert all(
            sum(t == time for t, _ in page) == sum(t == time for t, _ in expected)
            for time, _ in page
        )
    # windows tile the range: each query starts where a window or a page stopped, none
    # reaches past the end, and empty windows cost at most a few reads per page (the span
    # grows 2-16x after each short one)
    assert all(start <= lo < hi <= end for lo, hi, _ in store.reads)
    assert len(store.reads) <= (2 * len(expected) + 1) * ((end - start).bit_length() + 2)


def test_windows_are_bounded_by_the_previous_page_and_grow_over_gaps() -> None:
    # one point per time 0..99, two per time (a group) where time % 4 == 0, then a gap
    rows = [(t, "a") for t in range(100)] + [(t, "b") for t in range(0, 100, 4)]
    rows += [(10**6 + t, "a") for t in range(10)]
    store = FakeStore(rows)
    pages = list(pages_by_time(store.read, 0, 10**9, 5, time_of=time_of, windowed=True))
    assert [r for page in pages for r in page] == store.rows
    first, *windowed = store.reads
    assert first == (0, 10**9, 5)  # nothing known yet: to the end
    assert all(hi < 10**9 for _, hi, _ in windowed[:-1])  # then bounded windows
    # after a full page from 0 to last, the next window is 5/4 of its extent
    lo0, hi0, _ = store.reads[1]
    assert hi0 - lo0 == 5 * lo0 // 4
    # the gap of ~10^6 is crossed in a handful of growing windows, not one per 2x page extent
    assert len(store.reads) < 60


def test_unwindowed_pages_read_to_the_end() -> None:
    store = FakeStore([(t, "a") for t in range(20)])
    list(pages_by_time(store.read, 0, 100, 3, time_of=time_of))
    assert all(hi == 100 for _, hi, _ in store.reads)  # SQLite: unchanged


def test_points_exactly_at_a_window_end_are_read_by_the_next_window() -> None:
    rows = [(t, "a") for t in range(6)] + [(9, "a"), (9, "b"), (24, "a")]
    store = FakeStore(rows)
    pages = list(pages_by_time(store.read, 0, 1000, 5, time_of=time_of, windowed=True))
    assert [r for page in pages for r in page] == store.rows
    # page [0, 4) cut before 4: window [4, 4 + 5*4//4) is short, ends exactly at the group
    # at 9, which the next window (3x wider: 5 rows asked, 2 got) reads whole; it ends
    # exactly at 24, read by the window after
    assert store.reads[:4] == [(0, 1000, 5), (4, 9, 5), (9, 24, 5), (24, 69, 5)]
    assert pages[2] == [(9, "a"), (9, "b")]
