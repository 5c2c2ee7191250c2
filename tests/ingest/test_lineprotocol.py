"""Line protocol encoding: exact escaping, float text, rejections, batch == reference encoder."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reading import KIND_STR, Quality, Reading, ReadingBatch
from ingest.lineprotocol import (
    LineProtocolError,
    encode_batch,
    encode_reading,
    escape_measurement,
    escape_string_field,
    escape_tag,
)

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000


def reading(value=1.5, *, asset=KILN, field="zone1_tc1_temperature_c", unit="", t=T0, q=0):
    return Reading(asset, field, value, Quality(q), t, T0 + 7, unit)


def test_schema_line_exactly():
    line = encode_reading(reading(1234.5, unit="°C", q=1))
    assert line == (
        "zone1_tc1_temperature_c,asset=xinghai/plant-1/firing-shop/kiln-2,enterprise=xinghai,"
        "line=firing-shop,site=plant-1,unit=°C value=1234.5,quality=1i,"
        f"received_ns={T0 + 7}i {T0}"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1200.0, "1200.0"),  # always a decimal point: InfluxDB must type it float
        (-0.0, "-0.0"),
        (1e16, "1e+16"),
        (1e-05, "1e-05"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
        (7, "7i"),
        (-(2**63), f"{-(2**63)}i"),
        (True, "true"),
        (False, "false"),
        ('say "hi" \\ bye\n', '"say \\"hi\\" \\\\ bye\n"'),
    ],
)
def test_value_text(value, text):
    assert f" value={text}," in encode_reading(reading(value))


def test_escaping_rules_per_element():
    assert escape_measurement('a b,c=d"e') == 'a\\ b\\,c=d"e'
    assert escape_tag('a b,c=d"e') == 'a\\ b\\,c\\=d"e'
    assert escape_string_field('a"b\\c') == '"a\\"b\\\\c"'
    line = encode_reading(reading(asset="e 1/s,2/l=3/k\\4", field="zone 1,x=y", unit="m3/h"))
    assert line.startswith(
        "zone\\ 1\\,x=y,asset=e\\ 1/s\\,2/l\\=3/k\\4,enterprise=e\\ 1,line=l\\=3,site=s\\,2,"
        "unit=m3/h value="
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"value": math.nan}, "finite"),
        ({"value": math.inf}, "finite"),
        ({"value": 2**63}, "64 bits"),
        ({"field": ""}, "field name is empty"),
        ({"field": "#zone"}, "comment"),
        ({"field": "\tzone"}, "tab"),
        ({"field": "a\nb"}, "newline"),
        ({"field": "zone\\"}, "backslash"),
        ({"field": "zone\\,1"}, "backslash"),
        ({"asset": "a/b/c/d\\ e"}, "backslash"),
        ({"asset": "a/b\\/c/d"}, "site"),  # the asset tag is fine, its site part is not
        ({"field": "a\x00b"}, "NUL"),
        ({"asset": "a/b/c/d\re"}, "carriage return"),
        ({"asset": "a/b/c"}, "four non-empty parts"),
        ({"asset": "a/b/\ud800/d"}, "Unicode"),
        ({"unit": "\udcff"}, "Unicode"),
        ({"value": "ok\udcff"}, "Unicode"),
        ({"t": 2**63 - 1}, "time range"),
    ],
)
def test_rejections_name_the_reading(changes, reason):
    r = reading(**changes)
    with pytest.raises(LineProtocolError, match=reason) as info:
        encode_reading(r)
    assert f"@ {r.source_time_ns}" in str(info.value)
    if changes == {"value": 2**63}:
        return  # a ReadingBatch cannot even hold it (int64 column)
    # The batch path rejects the same reading, keeps the good one and says which row is which.
    encoded = encode_batch(ReadingBatch.from_readings([reading(2.5, t=T0 - 1), r]))
    assert [x.reading.field for x in encoded.rejected] == [r.field]
    assert reason.split()[0] in encoded.rejected[0].reason
    assert repr(r.asset) in encoded.rejected[0].reason
    assert encoded.index.tolist() == [0]
    assert encoded.body.decode().count("\n") == 0
    assert encoded.body.decode() == encode_reading(reading(2.5, t=T0 - 1))


def test_backslash_before_ordinary_character_is_kept_literally():
    line = encode_reading(reading(asset="a/b/c/k\\1", field="x\\y"))
    assert line.startswith("x\\y,asset=a/b/c/k\\1,")


def test_batch_index_maps_lines_to_rows():
    rows = [reading(float(i), t=T0 + i) for i in range(6)]
    rows[1] = reading(math.nan, t=T0 + 1)
    rows[4] = reading(field="", t=T0 + 4)
    encoded = encode_batch(ReadingBatch.from_readings(rows))
    assert encoded.index.dtype == np.int64
    assert encoded.index.tolist() == [0, 2, 3, 5]
    lines = encoded.body.decode().split("\n")
    assert [line.rsplit(" ", 1)[1] for line in lines] == [str(T0 + i) for i in (0, 2, 3, 5)]


def test_precision_truncates_timestamps():
    batch = ReadingBatch.from_readings([reading(t=T0 + 1_999_999)])
    assert encode_batch(batch, "ms").body.decode().endswith(f" {(T0 + 1_999_999) // 10**6}")
    with pytest.raises(ValueError, match="precision"):
        encode_batch(batch, "h")


def test_empty_batch():
    encoded = encode_batch(ReadingBatch.empty())
    assert encoded.body == b"" and len(encoded) == 0 and encoded.rejected == []


def test_bad_quality_and_kind_in_batch_are_rejected():
    batch = ReadingBatch.from_readings([reading(t=T0), reading(t=T0 + 1)])
    batch.quality[0] = 9
    batch.kind[1] = 7
    encoded = encode_batch(batch)
    assert len(encoded) == 0
    assert "quality" in encoded.rejected[0].reason
    assert "kind" in encoded.rejected[1].reason


def test_non_string_text_value_is_rejected():
    batch = ReadingBatch.from_readings([reading("ok")])
    batch.text[0] = 42
    assert batch.kind[0] == KIND_STR
    encoded = encode_batch(batch)
    assert len(encoded) == 0 and "must be a str" in encoded.rejected[0].reason


# --------------------------------------------------------------------- properties

finite_floats = st.floats(allow_nan=False, allow_infinity=False) | st.builds(
    lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0],
    st.integers(0, 2**64 - 1),
).filter(math.isfinite)
sensor_floats = st.builds(lambda i, k: i / 10**k, st.integers(-(10**9), 10**9), st.integers(0, 6))


@settings(max_examples=150, deadline=None)
@given(st.lists(finite_floats | sensor_floats, min_size=1, max_size=50))
def test_floats_round_trip_to_the_last_bit(values):
    batch = ReadingBatch.from_floats(KILN, "f", np.array(values), np.arange(len(values)) + T0)
    lines = encode_batch(batch).body.decode().split("\n")
    texts = [line.split(" value=", 1)[1].split(",", 1)[0] for line in lines]
    assert texts == [repr(v) for v in values]
    assert all(float(t) == v and math.copysign(1, float(t)) == math.copysign(1, v)
               for t, v in zip(texts, values, strict=True))  # fmt: skip


# The characters line protocol treats specially, a few ordinary and non-ASCII ones and a lone
# surrogate (must be rejected). Arbitrary Unicode goes through the real-InfluxDB round trip.
names = st.text(st.sampled_from(list(' ,="\\#\n\t\r\x00az09_-./é中°\ud800\U0001f525')), max_size=6)
values = (
    finite_floats
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(max_size=10)
    | st.just(math.nan)
)
readings = st.builds(
    Reading,
    asset=st.builds(lambda *p: "/".join(p), names, names, names, names),
    field=names,
    value=values,
    quality=st.sampled_from(list(Quality)),
    source_time_ns=st.integers(-(2**62), 2**62),
    received_time_ns=st.integers(0, 2**62),
    unit=names,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(readings, max_size=12))
def test_batch_encoder_matches_reference_encoder(rows):
    """The vectorised batch path produces exactly what the one-reading reference produces,
    and rejects exactly the readings the reference rejects."""
    expected_lines, expected_rows = [], []
    for i, r in enumerate(rows):
        try:
            expected_lines.append(encode_reading(r))
            expected_rows.append(i)
        except LineProtocolError:
            pass
    encoded = encode_batch(ReadingBatch.from_readings(rows))
    assert encoded.index.tolist() == expected_rows
    assert encoded.body == "\n".join(expected_lines).encode("utf-8")
    rejected_rows = sorted(set(range(len(rows))) - set(expected_rows))
    # repr: NaN != NaN, but the rejected reading must be the very one given
    assert [repr(r.reading) for r in encoded.rejected] == [repr(rows[i]) for i in rejected_rows]
