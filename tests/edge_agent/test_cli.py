"""``kilnworks agent`` commands: check, config-from-manifest, discover (real OPC UA server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.cli import main as kilnworks
from edge_agent.cli import main
from edge_agent.config import parse_agent_text
from edge_agent.discover import unece_code
from tests.edge_agent.kiln_server import DEGREE_CELSIUS_UNECE, KilnServer
from tests.edge_agent.test_config import EXAMPLE, MINIMAL


def test_check_accepts_the_sample_config(capsys, monkeypatch):
    monkeypatch.delenv("KILNWORKS_STORE_URL", raising=False)
    assert kilnworks(["agent", "check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out
    assert (
        "source xinghai-kilns (opcua) opc.tcp://127.0.0.1:48402/kilnworks/xinghai/, 58 nodes" in out
    )


def test_check_and_run_refuse_a_broken_config_with_exit_2(tmp_path, capsys):
    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL.replace("queue_size", "x").replace('unit = "°C"', "unit = 5"))
    for command in ("check", "run"):
        assert main([command, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path}: source[0].node[0].unit: expected a non-empty string, got 5" in err


def test_config_from_manifest_writes_a_loadable_config(tmp_path, capsys):
    manifest = {
        "opcua": [
            {
                "enterprise": "fushun",
                "endpoint": "opc.tcp://127.0.0.1:48401/kilnworks/fushun/",
                "kilns": [
                    {
                        "asset": "fushun/plant-1/firing-shop/kiln-2",
                        "nodes": {"car_push_count": "ns=2;s=fushun.kiln-2.car_push_count"},
                    }
                ],
            }
        ],
        "mqtt": {
            "broker": "mqtt://127.0.0.1:1883",
            "presses": [
                {
                    "asset": "fushun/plant-1/forming-shop/press-1",
                    "style": "json",
                    "topics": {"cycle": "shangbu/fushun/plant-1/forming-shop/press-1/cycle"},
                },
                {
                    "asset": "fushun/plant-1/forming-shop/press-2",
                    "style": "sparkplug",
                    "group": "shangbu",
                    "edge_node": "fushun-forming",
                    "device": "press-2",
                },
            ],
        },
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    out = tmp_path / "agent.toml"
    args = ["config-from-manifest", str(tmp_path / "m.json"), "--store-url", "sqlite:///x.db"]
    assert main([*args, "-o", str(out)]) == 0
    cfg = parse_agent_text(out.read_text(), "agent.toml", environ={})
    assert cfg.source_types == ("opcua", "mqtt_json", "sparkplug")
    assert cfg.opcua[0].nodes[0].field == "car_push_count"
    assert main(["config-from-manifest", str(tmp_path / "missing.json")]) == 2


def test_unece_code_decoding():
    assert unece_code(DEGREE_CELSIUS_UNECE) == "CEL"
    assert unece_code(20529) == "P1"  # percent


@pytest.mark.integration
async def test_discover_prints_a_mapping_skeleton_with_units(tmp_path, capsys):
    server = KilnServer(tmp_path, zones=1, thermocouples=2)
    await server.start()
    try:
        code = await asyncio.to_thread(
            main,
            ["discover", server.endpoint, "--enterprise", "xinghai", "--site", "plant-1",
             "--line", "firing-shop"],
        )  # fmt: skip
    finally:
        await server.stop()
    assert code == 0
    out = capsys.readouterr().out
    cfg = parse_agent_text(
        '[agent]\nenterprise = "x"\n[output]\nstore_url = "sqlite:///x.db"\n' + out,
        "discovered.toml",
        environ={},
    )
    nodes = {n.node_id: n for n in cfg.opcua[0].nodes}
    tc = nodes["ns=2;s=xinghai.kiln-1.zone1.tc2.temperature"]
    assert (tc.asset, tc.field, tc.unit) == (
        "xinghai/plant-1/firing-shop/kiln-1",
        "zone1_tc2_c",
        "°C",
    )
    assert "EURange 0..1450, historized" in out
    assert "ns=2;s=xinghai.kiln-1.state" in nodes
    assert not any(".eurange" in n for n in nodes)  # properties are not variables to map


def test_discover_reports_an_unreachable_server(capsys):
    from tests.servers import free_port

    assert main(["discover", f"opc.tcp://127.0.0.1:{free_port()}/", "--timeout", "2"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_dead_letters_are_readable_while_an_agent_holds_the_spool(tmp_path, capsys):
    from ingest.spool import Spool

    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL + '\n[spool]\npath = "spool.db"\n', encoding="utf-8")
    assert main(["dead-letters", "--config", str(path)]) == 1  # no spool yet
    capsys.readouterr()
    with Spool(tmp_path / "spool.db") as spool:  # a running agent holds it
        spool.dead_letter("presses", "malformed_json", "press-1 cycle: Expecting value", b"{oops")
        assert main(["dead-letters", "--config", str(path)]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["source"], r["reason"], r["raw"]) for r in rows] == [
        ("presses", "malformed_json", "{oops")
    ]
    assert main(["dead-letters", "--config", str(path), "--limit", "5"]) == 0
    assert "press-1 cycle: Expecting value" in capsys.readouterr().out
