"""DataValue -> Reading conversion (pure): timestamps, quality, variant types."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua

from core.reading import Quality
from edge_agent.sources.opcua_values import (
    UnsupportedValue,
    datetime_to_ns,
    ns_to_datetime,
    python_value,
    quality_of,
    to_reading,
)

SRC = datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=UTC)
SRV = datetime(2026, 11, 26, 1, 2, 4, tzinfo=UTC)
ASSET = "xinghai/plant-1/firing-shop/kiln-1"


def dv(value, *, status=ua.StatusCodes.Good, source=SRC, server=SRV) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value),
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=source,
        ServerTimestamp=server,
    )


def test_datetime_ns_round_trip_is_exact_to_the_microsecond():
    ns = datetime_to_ns(SRC)
    assert ns == 1_795_654_923_456_789_000
    assert ns_to_datetime(ns) == SRC
    assert datetime_to_ns(SRC.replace(tzinfo=None)) == ns  # naive means UTC
    assert ns_to_datetime(ns + 999) == SRC  # floor: a HistoryRead from it includes the instant


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("source", datetime_to_ns(SRC)), ("server", datetime_to_ns(SRV)), ("receive", 42)],
)
def test_timestamp_choice(choice, expected):
    r = to_reading(dv(812.5), asset=ASSET, field="f_c", unit="°C", timestamp=choice, received_ns=42)
    assert (r.source_time_ns, r.received_time_ns, r.value, r.unit) == (expected, 42, 812.5, "°C")


def test_missing_source_timestamp_falls_back_to_server_then_receive():
    assert to_reading(dv(1.0, source=None), asset=ASSET, field="f", unit="", timestamp="source",
                      received_ns=7).source_time_ns == datetime_to_ns(SRV)  # fmt: skip
    assert to_reading(dv(1.0, source=None, server=None), asset=ASSET, field="f", unit="",
                      timestamp="source", received_ns=7).source_time_ns == 7  # fmt: skip


def test_status_code_severity_is_the_quality():
    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) == Quality.GOOD
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)) == Quality.UNCERTAIN
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadSensorFailure)) == Quality.BAD
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadCommunicationError)) == Quality.BAD
    assert quality_of(None) == Quality.GOOD


def test_variant_values():
    assert python_value(True) is True
    assert python_value(7) == 7
    assert python_value("soaking") == "soaking"
    assert python_value(ua.LocalizedText("firing")) == "firing"
    assert python_value(SRC) == datetime_to_ns(SRC)
    with pytest.raises(UnsupportedValue) as err:
        python_value(2**64 - 1)
    assert err.value.reason == "out_of_range"
    with pytest.raises(UnsupportedValue) as err:
        python_value([1.0, 2.0])
    assert err.value.reason == "wrong_type"
    with pytest.raises(UnsupportedValue) as err:
        python_value(None)
    assert err.value.reason == "no_value"
