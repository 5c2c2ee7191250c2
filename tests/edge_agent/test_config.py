"""Agent config: the sample config loads; broken configs fail naming file, key and expectation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import ConfigError
from edge_agent.config import load_agent_config, parse_agent_text
from edge_agent.manifest import config_from_manifest, toml_value, unit_for_field

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent" / "shangbu-sim.toml"

MINIMAL = """
[agent]
enterprise = "xinghai"
site = "plant-1"

[output]
store_url = "sqlite:///tmp/x.db"

[[source]]
type = "opcua"
name = "kilns"
endpoint = "opc.tcp://127.0.0.1:4840/"
  [[source.node]]
  node_id = "ns=2;s=xinghai.kiln-1.zone1.tc1.temperature"
  asset = "xinghai/plant-1/firing-shop/kiln-1"
  field = "zone1_tc1_temperature_c"
  unit = "°C"
"""


def test_sample_shangbu_config_loads_every_kiln_node():
    cfg = load_agent_config(EXAMPLE, environ={})
    opcua = cfg.opcua
    assert [s.endpoint.split("/")[-2] for s in opcua] == [
        "dalian",
        "fushun",
        "xinghai",
        "lifeng",
        "yangdong",
    ]
    assert [s.endpoint.split(":")[2].split("/")[0] for s in opcua] == [
        "48400",
        "48401",
        "48402",
        "48403",
        "48404",
    ]
    # kiln-1: 4 zones x 2 TCs, kiln-2: 6 zones x 2 TCs per enterprise
    for s in opcua:
        tcs = [n for n in s.nodes if n.field.endswith("_temperature_c")]
        assert len(tcs) == 4 * 2 + 6 * 2
        assert {n.unit for n in tcs} == {"°C"}
        assert all(n.node_id.startswith("ns=2;s=") for n in s.nodes)
    assert cfg.store_url == "influxdb://127.0.0.1:8086/kilnworks"
    assert "mqtt_json" in cfg.source_types and "sparkplug" in cfg.source_types


def test_store_url_env_override_and_relative_paths(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL + '\n[spool]\npath = "spool/agent.db"\n', encoding="utf-8")
    cfg = load_agent_config(path, environ={"KILNWORKS_STORE_URL": "influxdb://h:8086/db"})
    assert cfg.store_url == "influxdb://h:8086/db"
    assert cfg.spool.path == tmp_path / "spool" / "agent.db"
    node = cfg.opcua[0].nodes[0]
    assert (node.sampling_interval_ms, node.queue_size, node.deadband_type) == (1000.0, 100, "none")
    assert node.trigger == "status_value_timestamp"


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (('enterprise = "xinghai"', ""), "agent.enterprise", "required key is missing"),
        (
            ('node_id = "ns=2;s=', 'node_id = "kiln-1 ns=2;s='),
            "source[0].node[0].node_id",
            "expected an OPC UA node id",
        ),
        (
            ('asset = "xinghai/plant-1/firing-shop/kiln-1"', 'asset = "kiln-1"'),
            "source[0].node[0].asset",
            "four non-empty parts",
        ),
        (
            ('unit = "°C"', 'unit = "°C"\n  sampling_intervall_ms = 5'),
            "source[0].node[0]",
            "unknown",
        ),
        (('type = "opcua"', 'type = "modbus"'), "source[0].type", "expected one of opcua"),
        (
            (
                'endpoint = "opc.tcp',
                'security_policy = "Basic256Sha256"\nsecurity_mode = "None"\nendpoint = "opc.tcp',
            ),
            "source[0].security_mode",
            "Sign or SignAndEncrypt",
        ),
        (('unit = "°C"', 'unit = "°C"\n  eu_range = [1450, 0]'), "eu_range", "low < high"),
        (('unit = "°C"', 'unit = "°C"\n  deadband = -1.0'), "deadband", "expected a number in"),
        (
            ('endpoint = "opc.tcp', 'password_env = "NO_SUCH_VAR"\nendpoint = "opc.tcp'),
            "password_env",
            "not set",
        ),
        (
            ('store_url = "sqlite:///tmp/x.db"', 'store_url = "postgres://x"'),
            "output.store_url",
            "sqlite://",
        ),
        (
            ('field = "zone1_tc1_temperature_c"', 'field = "Zone 1 TC1"'),
            "field",
            "lower_snake_case",
        ),
    ],
)
def test_broken_config_names_file_key_and_expectation(change, key, expected):
    old, new = change
    assert old in MINIMAL
    with pytest.raises(ConfigError) as err:
        parse_agent_text(MINIMAL.replace(old, new, 1), "agent.toml", environ={})
    text = str(err.value)
    assert text.startswith("agent.toml: ")
    assert key in text
    assert expected in text


def test_duplicate_node_and_duplicate_source_names_are_refused():
    node = MINIMAL[MINIMAL.index("  [[source.node]]") :]
    with pytest.raises(ConfigError, match=r"node\[1\].node_id: .* already mapped by node\[0\]"):
        parse_agent_text(MINIMAL + node, "agent.toml", environ={})
    source = MINIMAL[MINIMAL.index("[[source]]") :]
    with pytest.raises(ConfigError, match=r"source\[1\].name: a unique name, 'kilns' repeats"):
        parse_agent_text(MINIMAL + source, "agent.toml", environ={})


def test_config_from_manifest_round_trips_every_node():
    manifest = {
        "opcua": [
            {
                "enterprise": "xinghai",
                "endpoint": "opc.tcp://127.0.0.1:48402/kilnworks/xinghai/",
                "kilns": [
                    {
                        "asset": "xinghai/plant-1/firing-shop/kiln-1",
                        "nodes": {
                            "zone1_tc1_temperature_c": "ns=2;s=xinghai.kiln-1.zone1.tc1.temperature",  # noqa: E501
                            "gas_flow_m3_h": "ns=2;s=xinghai.kiln-1.gas_flow",
                            "state": 'ns=2;s=xinghai."odd" name\\',
                        },
                    }
                ],
            }
        ],
        "mqtt": {"broker": "mqtt://127.0.0.1:1883", "presses": []},
    }
    text = config_from_manifest(manifest, store_url="sqlite:///x.db")
    cfg = parse_agent_text(text, "generated.toml", environ={})
    nodes = {n.field: (n.node_id, n.unit) for n in cfg.opcua[0].nodes}
    assert nodes == {
        "zone1_tc1_temperature_c": ("ns=2;s=xinghai.kiln-1.zone1.tc1.temperature", "°C"),
        "gas_flow_m3_h": ("ns=2;s=xinghai.kiln-1.gas_flow", "m3/h"),
        "state": ('ns=2;s=xinghai."odd" name\\', ""),
    }
    assert cfg.opcua[0].nodes[0].sampling_interval_ms == 0.0
    assert cfg.guard.max_future_s == 0.0


def test_toml_value_escapes_and_units():
    assert toml_value('a"b\\c\n') == '"a\\"b\\\\c\\u000a"'
    assert json.loads(toml_value("°C")) == "°C"
    assert unit_for_field("o2_pct") == "%"
    assert unit_for_field("co_ppm") == "ppm"
    assert unit_for_field("state") == ""
