"""Reading one series page by page in time order, never skipping or repeating a point.

Shared by the stores' ``iter_readings`` (``InfluxV1Store``, ``SQLiteStore``), which
``kilnworks export`` uses. A page is one query ``start <= time < end ORDER BY time LIMIT n``;
the next page starts where the last one stopped. The catch is the boundary: one series of
kilnworks (an asset's field) may hold *several points at the same timestamp*. InfluxDB keys a
point by measurement, tag set and time, and ``unit`` is a tag, so the same asset, field and
time with two units are two points; a query's ``LIMIT`` may cut such a group in two, and
continuing after the last timestamp would skip the rest of it (continuing *at* it would
repeat the part already read). So a full page is cut before its last timestamp, and the next
page starts at that timestamp: every group of points sharing a time is read whole by one
query. A page whose points all share one time is followed by a read of exactly that time.

A page shorter than ``page_size`` is the last one, so the store's read must never cut an
answer short by itself (InfluxDB's ``max-row-limit`` does, for non-chunked answers: the v1
store asks for chunked ones, to which it does not apply).

Memory: at most ``page_size`` rows plus one group of points sharing a time (the number of
units one series had at one instant) are held at once.

The paging works on the store's raw rows (``time_of`` gives a row's time), so rows the store
drops afterwards (InfluxDB rows without a ``value``) still count towards a full page.

``windowed=True`` (the InfluxDB store) bounds each query's range too: ``[cursor, min(cursor +
span, end))`` instead of ``[cursor, end)``, because InfluxDB sets up an iterator over every
shard a query's range touches even when ``LIMIT`` stops it early (over a year of weekly
shards the first page of a paged export cost 2-10x the last one; docs/ingest-influxdb.md).
The first query runs to ``end`` (nothing is known of the data yet; a store's export starts at
the earliest representable time); after a full page the span is 5/4 of that page's time
extent (on even data the next window holds a page and a quarter, so ``LIMIT`` still ends it,
and each query touches few shards beyond its page); after a short page whose window was not
the end, everything in that window has been read, the next window starts at its end and the
span grows by ``page_size / rows`` (2x to 16x), so sparse data, gaps and the stretch after a
series' last point cost a few queries, not one per empty window. Windows are half-open and a
group of points sharing a time has one time, so a window boundary never splits one; the rule
"short page = last page" holds only for the window that reaches ``end``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

DEFAULT_PAGE_SIZE = 50_000

Row = TypeVar("Row")
# read(start_ns, end_ns, limit) -> the rows with start_ns <= time < end_ns ordered by time,
# the first ``limit`` of them (None: all).
ReadPage = Callable[[int, int, int | None], Sequence[Row]]


def check_page_size(page_size: int) -> int:
    """``page_size`` as an int >= 1, else TypeError / ValueError."""
    size = operator.index(page_size)
    if size < 1:
        raise ValueError(f"page_size must be at least 1, not {size}")
    return size


def pages_by_time(
    read: ReadPage[Row],
    start_ns: int,
    end_ns: int,
    page_size: int = DEFAULT_PAGE_SIZE,
    *,
    time_of: Callable[[Row], int],
    windowed: bool = False,
) -> Iterator[list[Row]]:
    """The rows of ``[start_ns, end_ns)`` as consecutive non-empty pages of at most
    ``page_size`` rows (more only when more than ``page_size`` points share one time), in
    the order ``read`` returns them; points sharing a time are never split across pages.
    ``windowed``: bound each query's time range, adapting it to the data (module docstring).
    """
    size = check_page_size(page_size)
    start, end = operator.index(start_ns), operator.index(end_ns)
    span: int | None = None  # the next query's time span; None: to ``end``
    while start < end:
        stop = end if span is None else min(start + span, end)
        rows = read(start, stop, size)
        if len(rows) < size:
            if rows:
                yield list(rows)
            if stop >= end:
                return
            # The window [start, stop) is read whole: go on after it, with a wider one.
            assert span is not None
            span *= min(16, max(2, -(-size // max(len(rows), 1))))
            start = stop
            continue
        # A full page: the points at its last time may go on in the next one.
        last = time_of(rows[-1])
        cut = len(rows) - 1
        while cut > 0 and time_of(rows[cut - 1]) == last:
            cut -= 1
        if cut > 0:
            yield list(rows[:cut])
            if windowed:
                # 5/4 of the page's time extent (>= 1: the rows before the cut are before
                # last): about one page more, which LIMIT ends, and few shards beyond it
                span = 5 * (last - time_of(rows[0])) // 4
            start = last
            continue
        # Every point of the page shares one time: read exactly that time, whole.
        rows = read(last, last + 1, None)
        if rows:
            yield list(rows)
        start = last + 1
