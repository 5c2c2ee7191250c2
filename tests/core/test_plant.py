"""The plant model: the built-in Shangbu model loads; broken files name file, key, expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError
from core.plant import Kiln, Press, load_plant, parse_plant

GOOD = """
[[enterprise]]
id = "xinghai"
name = "Xinghai"
key = true
  [[enterprise.site]]
  id = "plant-1"
    [[enterprise.site.line]]
    id = "firing-shop"
      [[enterprise.site.line.asset]]
      id = "kiln-1"
      type = "kiln"
      kind = "shuttle"
      zones = 3
      thermocouples_per_zone = 2
      [[enterprise.site.line.asset]]
      id = "press-1"
      type = "press"
      kind = "isostatic"
      ideal_cycle_time_s = 90
"""


def test_builtin_shangbu_model_has_the_five_key_enterprises() -> None:
    model = load_plant()
    assert [e.id for e in model.enterprises] == [
        "dalian", "fushun", "xinghai", "lifeng", "yangdong",
    ]  # fmt: skip
    assert all(e.key for e in model.enterprises)
    assert len(model.kilns()) == 10 and len(model.presses()) == 10
    tunnel = model.asset("lifeng/plant-1/firing-shop/kiln-2")
    assert isinstance(tunnel, Kiln) and tunnel.kind == "tunnel"
    assert tunnel.nameplate_cars_per_hour == 1.2


def test_kiln_thermocouple_fields_follow_the_naming_convention() -> None:
    model = parse_plant(GOOD)
    kiln = model.asset("xinghai/plant-1/firing-shop/kiln-1")
    assert isinstance(kiln, Kiln)
    assert kiln.thermocouple_fields() == [
        "zone1_tc1_temperature_c", "zone1_tc2_temperature_c",
        "zone2_tc1_temperature_c", "zone2_tc2_temperature_c",
        "zone3_tc1_temperature_c", "zone3_tc2_temperature_c",
    ]  # fmt: skip
    press = model.asset("xinghai/plant-1/firing-shop/press-1")
    assert isinstance(press, Press) and press.ideal_cycle_time_s == 90.0


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (("zones = 3", "zones = -1"), "enterprise[0].site[0].line[0].asset[0].zones", "[1, 64]"),
        (('kind = "shuttle"', 'kind = "round"'), "asset[0].kind", "one of shuttle, tunnel"),
        (('id = "kiln-1"', 'id = "Kiln 1"'), "asset[0].id", "lower-case id"),
        (
            ("ideal_cycle_time_s = 90", 'ideal_cycle_time_s = "fast"'),
            "ideal_cycle_time_s",
            "expected a number",
        ),
        (("zones = 3", "zones = 3\n      zone = 4"), "asset[0].zone", "unknown key"),
        (('id = "press-1"', 'id = "kiln-1"'), "line[0].asset", "'kiln-1' appears twice"),
        (('kind = "shuttle"', 'kind = "tunnel"'), "nameplate_cars_per_hour", "tunnel kiln"),
    ],
)
def test_broken_model_names_file_key_and_expectation(
    tmp_path: Path, change: tuple[str, str], key: str, expected: str
) -> None:
    path = tmp_path / "plant.toml"
    path.write_text(GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as exc:
        load_plant(path)
    message = str(exc.value)
    assert message.startswith(str(path) + ": ")
    assert key in exc.value.key
    assert expected in message


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_plant(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[enterprise]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plant(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_plant(latin)
