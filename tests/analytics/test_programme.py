"""Programmes: parsing, validation errors, the travelling setpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.programme import Programme, ProgrammeError, load_programme, parse_programme
from core.config import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "programmes" / "porcelain-hv-insulator.toml"
SIMULATOR_JSON = (
    '[{"kind":"ramp","rate_c_h":60,"target_c":600},{"kind":"hold","hours":2},'
    '{"kind":"cool","rate_c_h":100,"target_c":500},{"kind":"natural_cool","target_c":80}]'
)


def test_simulator_json_gives_hand_computed_setpoint() -> None:
    p = Programme.from_segments(json.loads(SIMULATOR_JSON), start_c=20)
    # 20 -> 600 at 60 °C/h takes 580/60 h = 34 800 s; hold 7 200 s; 600 -> 500 at 100 °C/h 3 600 s
    bt, bc = p.breakpoints()
    np.testing.assert_allclose(bt, [0, 34_800, 42_000, 45_600])
    np.testing.assert_allclose(bc, [20, 600, 600, 500])
    assert p.duration_s == 45_600
    sp = p.setpoint_c(np.array([-1.0, 0.0, 3600.0, 36_000.0, 43_800.0, 45_600.0, 50_000.0]))
    np.testing.assert_allclose(sp[1:6], [20, 80, 600, 550, 500])
    assert np.isnan(sp[0]) and np.isnan(sp[6])  # before start; natural cool: not judged
    idx = p.segment_index(np.array([-5.0, 10.0, 40_000.0, 44_000.0, 90_000.0]))
    assert idx.tolist() == [-1, 0, 1, 2, 3]
    assert p.spans[2].rate_c_h == -100


def test_example_programme_loads_and_is_realistic() -> None:
    p = load_programme(EXAMPLE)
    assert p.peak_c == 1300
    assert 40 * 3600 < p.duration_s < 50 * 3600
    kinds = [s.kind for s in p.segments]
    assert kinds[0] == "ramp" and kinds[-1] == "natural_cool" and "hold" in kinds


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], "at least one segment"),
        ([{"kind": "ramp", "rate_c_h": 60, "target_c": 10}], "not above"),
        ([{"kind": "cool", "rate_c_h": 60, "target_c": 500}], "not below"),
        ([{"kind": "ramp", "rate_c_h": 0, "target_c": 500}], "rate_c_h must be"),
        ([{"kind": "ramp", "rate_c_h": 60, "target_c": 1500}], "above the kiln's limit"),
        ([{"kind": "ramp", "rate_c_h": 60}], "target_c is required"),
        ([{"kind": "ramp", "rate_c_h": float("nan"), "target_c": 500}], "finite number"),
        ([{"kind": "hold", "hours": 0}], "hours must be > 0"),
        ([{"kind": "soak", "hours": 1}], "unknown kind"),
        ([{"kind": "hold", "hours": 1, "rate_c_h": 5}], "unknown key"),
        (
            [{"kind": "natural_cool", "target_c": 0}, {"kind": "hold", "hours": 1}],
            "must be last",
        ),
    ],
)
def test_impossible_programmes_are_rejected_with_the_segment_named(
    segments: list, message: str
) -> None:
    with pytest.raises(ProgrammeError, match=message):
        Programme.from_segments(segments)


def test_toml_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[segment]]\nkind = "ramp"\nrate_c_h = 60\ntarget_c = 900\n'
        '[[segment]]\nkind = "ramp"\nrate_c_h = 60\ntarget_c = 800\n'
    )
    with pytest.raises(ConfigError) as info:
        load_programme(bad)
    assert str(bad) in str(info.value) and "segment[1]" in str(info.value)
    with pytest.raises(ConfigError, match=r"segment\[0\]\.rate_c_h"):
        parse_programme('[[segment]]\nkind = "ramp"\nrate_c_h = "fast"\ntarget_c = 900\n')
    with pytest.raises(ConfigError, match="ramp_rate"):
        parse_programme('[[segment]]\nkind = "ramp"\nramp_rate = 5\ntarget_c = 900\n')
    with pytest.raises(ConfigError, match="file not found"):
        load_programme(tmp_path / "missing.toml")
