"""`kilnworks report firing`: CSV + programme TOML in, summary or JSON out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from analytics.cli import main
from analytics.firing_clock import programme_time_s
from analytics.firing_csv import parse_time_ns
from analytics.programme import load_programme

EXAMPLE = Path(__file__).parents[2] / "examples" / "programmes" / "porcelain-hv-insulator.toml"
S = 1_000_000_000
T0 = parse_time_ns("2026-03-01T06:00:00+08:00")


def write_csv(path: Path, *, hot_zone_c: float = 0.0, rfc3339: bool = True) -> None:
    p = load_programme(EXAMPLE)
    t = T0 + np.arange(0, 46 * 3600, 120, dtype=np.int64) * S
    sp = p.setpoint_c(programme_time_s(t, T0))
    sp = np.where(np.isfinite(sp), sp, 480.0)
    rows = ["time,zone1_tc1_temperature_c,zone1_tc2_temperature_c"]
    for i, (ti, v) in enumerate(zip(t, sp, strict=True)):
        stamp = f"{np.datetime64(int(ti), 'ns')}Z" if rfc3339 else str(ti)
        hot = hot_zone_c if 900 <= i < 960 else 0.0
        second = "" if i == 10 else f"{v + 1.5:.2f}"  # an empty cell: missing
        rows.append(f"{stamp},{v + hot:.2f},{second}")
    rows.insert(20, f"{stamp},oops,{v:.2f}")  # a bad cell: counted, not fatal
    rows.insert(30, "yesterday,1,2")  # a bad time: row skipped
    path.write_text("\n".join(rows) + "\n")


def test_json_report_of_a_good_firing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data)
    assert main(["firing", "--programme", str(EXAMPLE), "--data", str(data), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["verdict"] == "conforming"
    assert doc["names"] == ["zone1_tc1_temperature_c", "zone1_tc2_temperature_c"]
    assert doc["start_ns"] == T0 and doc["input"] == {"bad_rows": 1, "bad_cells": 1}
    assert doc["thermocouples"][1]["mean_abs_deviation_c"] == pytest.approx(1.5, abs=0.01)
    assert len(doc["segments"]) == 9
    assert "line 31" in err and "yesterday" in err and "oops" in err


def test_text_report_shows_excursion(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data, hot_zone_c=25.0, rfc3339=False)
    argv = ["firing", "--programme", str(EXAMPLE), "--data", str(data), "--band", "15"]
    assert main([*argv, "--fail-on-nonconforming"]) == 1
    out = capsys.readouterr().out
    assert "NONCONFORMING" in out and "±15 °C" in out
    assert "zone1_tc1_temperature_c: 30.00 h .. 31.97 h  worst +25.0 °C" in out
    assert "too high" in out
    assert main([*argv, "--band", "30"]) == 0


def test_unusable_input_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[segment]]\nkind = "ramp"\nrate_c_h = -5\ntarget_c = 900\n')
    data = tmp_path / "firing.csv"
    write_csv(data)
    assert main(["firing", "--programme", str(bad), "--data", str(data)]) == 2
    assert "bad.toml: segment[0].rate_c_h" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("time,tc1\n")
    assert main(["firing", "--programme", str(EXAMPLE), "--data", str(empty)]) == 2
    assert "no usable data row" in capsys.readouterr().err
    assert main(["firing", "--programme", str(EXAMPLE)]) == 2  # --data missing
    assert main(["nonsense"]) == 2


def test_plot_needs_matplotlib(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data)
    png = tmp_path / "firing.png"
    code = main(["firing", "--programme", str(EXAMPLE), "--data", str(data), "--plot", str(png)])
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 2 and "needs matplotlib" in capsys.readouterr().err
        assert not png.exists()
    else:
        assert code == 0 and png.stat().st_size > 1000


def test_auto_start_finds_a_late_start(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data)
    # The export starts 3 h before the programme did: prepend cold-kiln rows.
    lines = data.read_text().splitlines()
    cold = [f"{T0 - k * 600 * S},20.0,20.5" for k in range(18, 0, -1)]
    data.write_text("\n".join([lines[0], *cold, *lines[1:]]) + "\n")
    args = ["firing", "--programme", str(EXAMPLE), "--data", str(data), "--json"]
    assert main(args) == 0
    naive = json.loads(capsys.readouterr().out)
    assert naive["verdict"] != "conforming"
    assert main([*args, "--auto-start"]) == 0
    aligned = json.loads(capsys.readouterr().out)
    assert abs(aligned["start_ns"] - T0) <= 120 * S and aligned["verdict"] == "conforming"
