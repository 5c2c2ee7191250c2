"""Guard and AgentOutput at the seam (fake spool): bad input is counted, kept, never fatal."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from core.reading import Quality, Reading
from edge_agent.config import GuardConfig
from edge_agent.guard import Guard
from edge_agent.health import AgentMetrics
from edge_agent.runtime import AgentOutput
from tests.edge_agent.fakes import MemorySpool

NOW = 1_800_000_000_000_000_000
S = 1_000_000_000
ASSET = "xinghai/plant-1/firing-shop/kiln-1"


def reading(value, t=NOW, field="zone1_tc1_temperature_c", asset=ASSET) -> Reading:
    return Reading(asset, field, value, Quality.GOOD, t, NOW, "°C")


def test_guard_reasons():
    guard = Guard(GuardConfig(max_future_s=300, max_past_s=3600))
    cases = {
        "not_finite": [reading(float("nan")), reading(float("inf")), reading(float("-inf"))],
        "wrong_type": [reading([1, 2]), reading(None), reading(1.0, t=1.5e18)],
        "bad_reading": [reading(1.0, asset="kiln-1"), reading(1.0, field="")],
        "clock_skew_future": [reading(1.0, t=NOW + 301 * S)],
        "clock_skew_past": [reading(1.0, t=NOW - 3601 * S)],
    }
    fine = [
        reading(1.0),
        reading(True),
        reading(7),
        reading("heating"),
        reading(1.0, t=NOW + 299 * S),
    ]
    for reason, bad in cases.items():
        good, refused = guard.split(bad + fine, NOW)
        assert good == fine
        assert [r.reason for r in refused] == [reason] * len(bad), reason
        assert all(r.detail for r in refused)


def test_guard_limits_of_zero_turn_the_time_checks_off():
    guard = Guard(GuardConfig(max_future_s=0, max_past_s=0))
    far = [reading(1.0, t=NOW + 10**6 * S), reading(1.0, t=0)]
    assert guard.split(far, NOW) == (far, [])


def test_output_spools_good_dead_letters_bad_and_counts_per_reason():
    spool = MemorySpool()
    registry = CollectorRegistry()
    out = AgentOutput(spool, Guard(GuardConfig()), AgentMetrics(registry), clock=lambda: NOW)
    batch = [
        reading(800.0),
        reading(float("nan")),
        reading(801.0, t=NOW + 1),
        reading(1.0, t=NOW + 10**4 * S),
    ]
    out.accept("kilns", batch)
    out.reject("presses", "malformed_json", "press-1 cycle: Expecting value", b"{oops")
    assert [r.value for r in spool.readings()] == [800.0, 801.0]
    assert [(d["source"], d["reason"]) for d in spool.dead] == [
        ("kilns", "not_finite"),
        ("kilns", "clock_skew_future"),
        ("presses", "malformed_json"),
    ]
    assert spool.dead[0]["reading"].field == "zone1_tc1_temperature_c"
    assert spool.dead[2]["raw"] == b"{oops"

    def sample(name, **labels):
        return registry.get_sample_value(name, labels)

    assert sample("kilnworks_agent_readings_in_total", source="kilns") == 4
    assert sample("kilnworks_agent_readings_out_total", source="kilns") == 2
    assert sample("kilnworks_agent_dead_letters_total", source="kilns", reason="not_finite") == 1
    assert (
        sample("kilnworks_agent_dead_letters_total", source="presses", reason="malformed_json") == 1
    )
    assert sample("kilnworks_agent_asset_last_seen_timestamp_seconds", asset=ASSET) == NOW / S


def test_output_raises_when_the_spool_fails_so_the_source_does_not_ack():
    class BrokenSpool(MemorySpool):
        def put(self, batch):
            raise OSError("disk full")

    out = AgentOutput(BrokenSpool(), Guard(), AgentMetrics(CollectorRegistry()), clock=lambda: NOW)
    try:
        out.accept("kilns", [reading(1.0)])
    except OSError as exc:
        assert "disk full" in str(exc)
    else:
        raise AssertionError("accept must raise when the spool cannot take the readings")
