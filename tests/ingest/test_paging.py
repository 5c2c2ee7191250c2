"""``ingest.paging.pages_by_time`` against a fake store that holds several points per time
(like InfluxDB, one per unit tag): the pages, joined, are exactly the rows, whatever the page
size; each page is bounded. The real stores are tested in ``test_export_paging.py``."""

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
