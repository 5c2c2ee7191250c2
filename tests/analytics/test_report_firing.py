"""`kilnworks report firing`: CSV + programme TOML in, summary or JSON out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analytics import firing_plot
from analytics.cli import main
from analytics.conformance import judge_firing
from analytics.firing_clock import programme_time_s
from analytics.firing_csv import parse_time_ns, read_firing_csv
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


def _plot_argv(data: Path, png: Path, *more: str) -> list[str]:
    return ["firing", "--programme", str(EXAMPLE), "--data", str(data), "--plot", str(png), *more]


def test_plot_needs_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # matplotlib is installed for the tests (the `test` extra), so hide it: a None entry in
    # sys.modules makes `import matplotlib...` raise ImportError, and dropping firing_plot makes
    # the CLI import it afresh. monkeypatch puts all of it back afterwards.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "analytics.firing_plot", raising=False)
    data = tmp_path / "firing.csv"
    write_csv(data)
    png = tmp_path / "firing.png"
    assert main(_plot_argv(data, png)) == 2
    out, err = capsys.readouterr()
    assert "needs matplotlib" in err and "kilnworks[plot]" in err
    assert "CONFORMING" in out  # the report is still printed in full
    assert not png.exists()


def _line(fig: Figure, gid: str) -> Line2D:
    (line,) = [a for a in fig.axes[0].lines if a.get_gid() == gid]
    return line


def _x_extent(patch: Patch) -> tuple[float, float]:
    # axvspan gives a Polygon (matplotlib < 3.9) or a Rectangle (>= 3.9); either way its path
    # through the patch transform is in (data x, axes y).
    xy = patch.get_patch_transform().transform(patch.get_path().vertices)
    return float(xy[:, 0].min()), float(xy[:, 0].max())


def test_plot_draws_actual_setpoint_band_and_excursion(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keep the figure the CLI drew, so the test checks what went into the PNG it wrote.
    figures: list[Figure] = []
    real = firing_plot.plot_firing

    def spy(*args: Any, **kwargs: Any) -> Figure:
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(firing_plot, "plot_firing", spy)
    data = tmp_path / "firing.csv"
    write_csv(data, hot_zone_c=25.0)  # tc1 is 25 °C hot for rows 900..959 (30.00 h .. 31.97 h)
    png = tmp_path / "firing.png"
    assert main(_plot_argv(data, png, "--band", "15")) == 0
    assert "NONCONFORMING" in capsys.readouterr().out

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(png)
    assert pixels.shape == (720, 1440, 4)  # 12 x 6 in at 120 dpi
    assert np.ptp(pixels[..., :3]) > 0.5  # drawn on, not a blank canvas

    (fig,) = figures
    ax = fig.axes[0]
    csv = read_firing_csv(data)
    hours = (csv.time_ns - T0) / 3.6e12
    expected_sp = load_programme(EXAMPLE).setpoint_c(programme_time_s(csv.time_ns, T0))

    # One line per thermocouple, carrying that thermocouple's samples (NaN where missing).
    tcs = [a for a in ax.lines if str(a.get_gid()).startswith("tc:")]
    assert [a.get_gid() for a in tcs] == [f"tc:{n}" for n in csv.names]
    for line, row in zip(tcs, csv.temps_c, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), hours)
        np.testing.assert_array_equal(line.get_ydata(), row)
    assert np.nanmax(tcs[0].get_ydata() - expected_sp) == pytest.approx(25.0, abs=0.01)

    # The setpoint is the programme's, NaN (not drawn) in the natural cool.
    sp = _line(fig, "setpoint")
    np.testing.assert_array_equal(sp.get_xdata(), hours)
    np.testing.assert_allclose(sp.get_ydata(), expected_sp, equal_nan=True)
    assert np.isnan(expected_sp[-1]) and np.isfinite(expected_sp[0])

    # The band: every polygon vertex lies exactly 15 °C above or below the setpoint, and the
    # band spans the judged part of the firing only.
    (band,) = [c for c in ax.collections if c.get_gid() == "band"]
    judged = np.isfinite(expected_sp)
    vertices = np.concatenate([p.vertices for p in band.get_paths()])
    at = np.interp(vertices[:, 0], hours[judged], expected_sp[judged])
    np.testing.assert_allclose(np.abs(vertices[:, 1] - at), 15.0, atol=1e-6)
    assert vertices[:, 0].min() == pytest.approx(0.0)
    assert vertices[:, 0].max() == pytest.approx(hours[judged].max())

    # Exactly one excursion span, over the hot rows, and a marker on tc1 at its worst.
    spans = [p for p in ax.patches if p.get_gid() == "excursion"]
    assert len(spans) == 1
    lo, hi = _x_extent(spans[0])
    assert lo == pytest.approx(900 * 120 / 3600) and hi == pytest.approx(959 * 120 / 3600)
    worst = _line(fig, f"worst:{csv.names[0]}")
    assert worst.get_color() == tcs[0].get_color()
    assert worst.get_xdata()[0] == pytest.approx(30.0, abs=0.04)
    assert worst.get_ydata()[0] - np.interp(30.0, hours[judged], expected_sp[judged]) == (
        pytest.approx(25.0, abs=1.0)
    )

    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["±15 °C", *csv.names, "setpoint", "excursion"]
    assert ax.get_title() == "HV insulator, 1300 °C peak: nonconforming, score 97.8%"


def test_plot_of_a_good_firing_marks_no_excursion(tmp_path: Path) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data)
    csv = read_firing_csv(data)
    programme = load_programme(EXAMPLE)
    report = judge_firing(programme, csv.time_ns, csv.temps_c, start_ns=T0)
    assert report.verdict == "conforming"
    png = tmp_path / "good.png"
    fig = firing_plot.plot_firing(png, programme, csv.time_ns, csv.temps_c, report, csv.names)
    assert matplotlib.image.imread(png).shape == (720, 1440, 4)
    ax = fig.axes[0]
    assert not [p for p in ax.patches if p.get_gid() == "excursion"]
    assert not [a for a in ax.lines if str(a.get_gid()).startswith("worst:")]
    assert len([a for a in ax.lines if str(a.get_gid()).startswith("tc:")]) == 2


def test_plot_setpoint_stands_still_in_a_pause(tmp_path: Path) -> None:
    # x is wall time, so during a pause the setpoint line is flat and resumes shifted later.
    data = tmp_path / "firing.csv"
    write_csv(data)
    csv = read_firing_csv(data)
    programme = load_programme(EXAMPLE)
    pause = (T0 + 2 * 3600 * S, T0 + 3 * 3600 * S)
    report = judge_firing(programme, csv.time_ns, csv.temps_c, start_ns=T0, pauses=[pause])
    fig = firing_plot.plot_firing(
        tmp_path / "p.png", programme, csv.time_ns, csv.temps_c, report, csv.names, pauses=[pause]
    )
    sp = _line(fig, "setpoint")
    x, y = np.asarray(sp.get_xdata()), np.asarray(sp.get_ydata())
    assert np.ptp(y[(x >= 2) & (x <= 3)]) == 0 and y[x == 2][0] == pytest.approx(80.0)
    assert y[x == 4][0] == pytest.approx(110.0)  # 3 h of programme time at 30 °C/h from 20


def test_plot_to_an_unwritable_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "firing.csv"
    write_csv(data)
    for png in (tmp_path / "no-such-dir" / "f.png", tmp_path / "f.nosuchformat"):
        assert main(_plot_argv(data, png)) == 2
        out, err = capsys.readouterr()
        assert f"--plot {png}: cannot write the plot" in err
        assert "CONFORMING" in out and not png.exists()


def test_plot_shows_dollar_signs_literally(tmp_path: Path) -> None:
    # Matplotlib would read "$^$" as (invalid) mathtext and fail the whole save.
    programme_file = tmp_path / "dollar.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    programme_file.write_text(text.replace('name = "HV insulator', 'name = "cone 10 $^$ HV'))
    data = tmp_path / "firing.csv"
    write_csv(data)
    png = tmp_path / "f.png"
    argv = ["firing", "--programme", str(programme_file), "--data", str(data), "--plot", str(png)]
    assert main(argv) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


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
