"""The reading type and its columnar batch: conversions are lossless, invalid readings named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.reading import (
    KIND_FLOAT,
    AssetPath,
    InvalidReading,
    Quality,
    Reading,
    ReadingBatch,
    check_reading,
)

ASSET = "xinghai/plant-1/firing-shop/kiln-2"

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(),
)
readings = st.builds(
    Reading,
    asset=st.just(ASSET),
    field=st.text(min_size=1),
    value=values,
    quality=st.sampled_from(Quality),
    source_time_ns=st.integers(min_value=-(2**62), max_value=2**62),
    received_time_ns=st.integers(min_value=0, max_value=2**62),
    unit=st.text(max_size=5),
)


@given(st.lists(readings, max_size=20))
def test_batch_round_trip_is_lossless(rows: list[Reading]) -> None:
    back = ReadingBatch.from_readings(rows).to_readings()
    assert back == rows
    # bools stay bools and ints stay ints (Reading equality alone would accept 1 == True)
    assert [type(r.value) for r in back] == [type(r.value) for r in rows]


def test_from_floats_builds_the_fast_path_columns() -> None:
    t = np.arange(5, dtype=np.int64) * 10**9
    batch = ReadingBatch.from_floats(ASSET, "zone1_tc1_temperature_c", np.linspace(20, 60, 5), t,
                                     received_time_ns=7)  # fmt: skip
    assert len(batch) == 5
    assert (batch.kind == KIND_FLOAT).all()
    assert batch.to_readings()[4] == Reading(ASSET, "zone1_tc1_temperature_c", 60.0, Quality.GOOD,
                                             4 * 10**9, 7)  # fmt: skip


def test_take_and_concat_keep_rows_aligned() -> None:
    rows = [Reading(ASSET, f"f{i}", i * 1.5, Quality.GOOD, i, i) for i in range(6)]
    batch = ReadingBatch.from_readings(rows)
    odd = batch.take(np.arange(6) % 2 == 1)
    assert [r.field for r in odd.to_readings()] == ["f1", "f3", "f5"]
    both = ReadingBatch.concat([batch.take(slice(0, 2)), batch.take(slice(2, 6))])
    assert both.to_readings() == rows


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (Reading(ASSET, "t", math.nan, Quality.GOOD, 1, 1), "not a finite number"),
        (Reading(ASSET, "t", math.inf, Quality.GOOD, 1, 1), "not a finite number"),
        (Reading(ASSET, "", 1.0, Quality.GOOD, 1, 1), "empty field name"),
        (Reading("xinghai/kiln-2", "t", 1.0, Quality.GOOD, 1, 1), "four non-empty parts"),
        (Reading(ASSET, "t", [1], Quality.GOOD, 1, 1), "not supported"),  # type: ignore[arg-type]
        (Reading(ASSET, "t", 1.0, Quality.GOOD, 1.5, 1), "integer of nanoseconds"),  # type: ignore[arg-type]
        (Reading(ASSET, "t", 2**63, Quality.GOOD, 1, 1), "does not fit in 64 bits"),
        (Reading(ASSET, "t", 1, Quality.GOOD, -(2**63) - 1, 1), "does not fit in 64 bits"),
    ],
)
def test_invalid_readings_are_named(reading: Reading, reason: str) -> None:
    with pytest.raises(InvalidReading) as exc:
        check_reading(reading)
    assert reason in str(exc.value)
    assert reading.field in str(exc.value)


def test_batch_of_a_reading_past_64_bits_names_it() -> None:
    good = Reading(ASSET, "count_total", 5, Quality.GOOD, 1, 1)
    huge = Reading(ASSET, "count_total", 2**64, Quality.GOOD, 2, 2)
    with pytest.raises(InvalidReading, match="64 bits") as exc:
        ReadingBatch.from_readings([good, huge])
    assert exc.value.reading == huge


def test_valid_reading_passes_and_path_parses() -> None:
    r = Reading(ASSET, "gas_flow_m3_h", 12.5, Quality.UNCERTAIN, 10, 11, "m3/h")
    check_reading(r)
    assert r.path == AssetPath("xinghai", "plant-1", "firing-shop", "kiln-2")
    assert str(r.path) == ASSET
    assert max(Quality.GOOD, Quality.BAD) is Quality.BAD
