"""Scenario loading, the Sparkplug codec against the spec's field numbers, the clock, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from simulators import sparkplug as spb
from simulators.cli import main, parse_fault, parse_start
from simulators.clock import SimClock
from simulators.opcua_gateway import unit_id
from simulators.scenario import ScenarioError, load_scenario, parse_scenario
from tests.servers import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_shangbu_is_the_five_enterprises_with_two_kilns_and_two_presses() -> None:
    sc = load_scenario("shangbu")
    assert sc.enterprises == ("dalian", "fushun", "xinghai", "lifeng", "yangdong")
    for e in sc.enterprises:
        kilns = {k.id: k for k in sc.kilns if k.enterprise == e}
        presses = {p.id: p for p in sc.presses if p.enterprise == e}
        assert (
            kilns["kiln-1"].kind,
            kilns["kiln-1"].zones,
            kilns["kiln-1"].thermocouples_per_zone,
        ) == ("shuttle", 4, 2)
        assert (kilns["kiln-2"].kind, kilns["kiln-2"].zones, kilns["kiln-2"].length_m) == (
            "tunnel",
            6,
            96.0,
        )
        assert (presses["press-1"].style, presses["press-1"].ideal_cycle_time_s) == ("json", 90.0)
        assert (presses["press-2"].style, presses["press-2"].ideal_cycle_time_s) == (
            "sparkplug",
            30.0,
        )
    assert load_scenario("mini").kilns[0].asset == "xinghai/plant-1/firing-shop/kiln-1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x"}, "enterprise: expected at least one"),
        (
            {
                "name": "x",
                "enterprise": [{"id": "e", "kiln": [{"id": "k", "kind": "shuttle", "zones": 0}]}],
            },
            "enterprise[0].kiln[0].zones: expected a number in [1, 32], got 0",
        ),
        (
            {
                "name": "x",
                "enterprise": [
                    {
                        "id": "e",
                        "kiln": [{"id": "k", "kind": "tunnel", "zones": 2, "profile_c": [1.0]}],
                    }
                ],
            },
            "profile_c: expected 2 temperatures",
        ),
        (
            {
                "name": "x",
                "enterprise": [
                    {
                        "id": "e",
                        "kiln": [
                            {"id": "k", "kind": "shuttle", "zones": 2, "programmes": ["nope"]}
                        ],
                    }
                ],
            },
            "unknown programme 'nope'",
        ),
        (
            {"name": "x", "enterprise": [{"id": "e", "zonez": 1}]},
            "enterprise[0].zonez: unknown key",
        ),
        ({"name": "x", "enterprise": [{"id": "e/f"}]}, "enterprise[0].id: expected letters"),
        (
            {
                "name": "x",
                "enterprise": [{"id": "e"}],
                "fault": [{"target": "e/s/l/k", "kind": "stall", "at_h": 1}],
            },
            "fault[0].target: expected an asset path",
        ),
    ],
)
def test_broken_scenarios_name_file_key_and_expectation(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data, "broken.toml")
    assert str(exc.value).startswith("broken.toml: ") and message in str(exc.value)


def test_unknown_scenario_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError, match="built-ins: mini, shangbu"):
        load_scenario("atlantis")


def test_sparkplug_payload_uses_the_spec_field_numbers() -> None:
    raw = spb.encode([("bdSeq", None, spb.UINT64, 3, 7)], timestamp_ms=5, seq=0)
    # Payload: timestamp=1 (varint 0x08), metrics=2 (len 0x12), seq=3 (varint 0x18)
    assert raw[0:2] == b"\x08\x05" and raw[2] == 0x12 and raw[-2:] == b"\x18\x00"
    metric = raw[4:-2]
    # Metric: name=1 (0x0a), timestamp=3 (0x18), datatype=4 (0x20) = 8, long_value=11 (0x58)
    assert metric == b"\x0a\x05bdSeq\x18\x07\x20\x08\x58\x03"
    neg = spb.decode(spb.encode([("t", None, spb.INT32, -2, 0)], timestamp_ms=0, seq=1)).metrics[0]
    assert neg.int_value == 2**32 - 2 and spb.get_value(neg) == -2  # two's complement per spec
    nan = spb.decode(
        spb.encode([(None, 101, spb.DOUBLE, math.nan, 0)], timestamp_ms=0, seq=2)
    ).metrics[0]
    assert not nan.name and nan.alias == 101 and math.isnan(spb.get_value(nan))


def test_units_follow_opc_ua_part_8() -> None:
    assert unit_id("CEL") == 4408652 and unit_id("KWH") == 4937544


def test_clock_maps_wall_to_simulated_time() -> None:
    wall = [100.0]
    clock = SimClock(1_000 * 10**9, 600.0, monotonic=lambda: wall[0])
    assert clock.now_ns() == 1_000 * 10**9  # stands still until started
    clock.start()
    wall[0] = 101.5
    assert clock.now_ns() == (1_000 + 900) * 10**9
    assert clock.wall_delay_s(clock.now_ns() + 600 * 10**9) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        SimClock(0, 0.0)


def test_cli_parses_faults_and_start_times() -> None:
    f = parse_fault(
        "stall@xinghai/plant-1/firing-shop/kiln-1,at_h=5,duration_h=2,power_fraction=0.3"
    )
    assert f == {
        "kind": "stall",
        "target": "xinghai/plant-1/firing-shop/kiln-1",
        "at_h": 5,
        "duration_h": 2,
        "power_fraction": 0.3,
    }
    with pytest.raises(Exception, match="KIND@TARGET"):
        parse_fault("melt@x")
    assert parse_start("2026-01-01T00:00:00Z") == 1767225600 * 10**9
    assert parse_start("-1d") < parse_start("now")


def test_cli_rejects_a_broken_scenario_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[[enterprise]]\nid = "e"\n[[enterprise.kiln]]\nid = "k"\nkind = "oven"\n'
    )
    assert main(["--scenario", str(bad)]) == 2
    assert (
        "bad.toml: enterprise[0].kiln[0].kind: expected one of shuttle, tunnel"
        in capsys.readouterr().err
    )


@pytest.mark.integration
def test_kilnworks_simulate_runs_writes_manifest_and_truth(
    mosquitto_shared: Mosquitto, tmp_path: Path
) -> None:
    manifest, truth = tmp_path / "sim.json", tmp_path / "truth"
    cmd = [
        sys.executable,
        "-m",
        "core.cli",
        "simulate",
        "--scenario",
        "mini",
        "--speed",
        "3600",
        "--opcua-port",
        "0",
        "--security",
        "none",
        "--mqtt",
        mosquitto_shared.url,
        "--topic-root",
        "cli-test",
        "--sparkplug-group",
        "cli-test",
        "--manifest",
        str(manifest),
        "--truth",
        str(truth),
        "--duration",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    m = json.loads(manifest.read_text())
    assert m["opcua"][0]["endpoint"].startswith("opc.tcp://127.0.0.1:")
    assert (
        m["mqtt"]["presses"][0]["topics"]["cycle"]
        == "cli-test/xinghai/plant-1/forming-shop/press-1/cycle"
    )
    files = sorted(p.name for p in truth.iterdir())
    assert files == [
        "xinghai__plant-1__firing-shop__kiln-1.jsonl",
        "xinghai__plant-1__firing-shop__kiln-2.jsonl",
        "xinghai__plant-1__forming-shop__press-1.jsonl",
        "xinghai__plant-1__forming-shop__press-2.jsonl",
    ]
    cycles = [json.loads(x) for x in (truth / files[3]).read_text().splitlines() if '"cycle"' in x]
    assert cycles and all(c["delivered"] for c in cycles)


def test_shangbu_meets_its_shuttle_kilns_in_different_states() -> None:
    from simulators.fleet import Fleet

    fleet = Fleet("shangbu")  # models only: nothing is started
    states = {a: k.snapshot()["state"].value for a, k in fleet.kilns.items() if k.kind == "shuttle"}
    assert {"heating", "cooling", "idle"} <= set(states.values())
