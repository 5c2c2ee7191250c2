"""``kilnworks report oee`` on the shipped example files, other CSV forms and bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from analytics import oee_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "oee"
BASE = [
    "--states", str(EXAMPLES / "states.csv"),
    "--counts", str(EXAMPLES / "counts.csv"),
    "--shifts", str(EXAMPLES / "shifts.toml"),
    "--ideal-cycle-s", "1",
]  # fmt: skip


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = oee_cli.main(argv, stdout=out)
    return code, out.getvalue()


def test_example_files_reproduce_the_published_worked_example() -> None:
    day = ["--from", "2026-11-25T00:00", "--to", "2026-11-26T00:00"]
    code, text = run(["oee", *BASE, *day, "--json", "--by", "shift"])
    assert code == 0
    doc = json.loads(text)
    ratios = doc["ratios"]
    assert ratios["availability"] == pytest.approx(373 / 420)
    assert ratios["performance"] == pytest.approx(19_271 / (373 * 60))
    assert ratios["quality"] == pytest.approx(18_848 / 19_271)
    assert ratios["oee"] == pytest.approx(0.7479, abs=5e-5)
    assert ratios["teep"] == pytest.approx(ratios["oee"] * 420 / 1440)
    assert doc["elements_s"]["pdot"] == 3600 and doc["elements_s"]["asut"] == 0  # setup pre-shift
    assert doc["reason_names"] == {"1000": "die crack"}
    assert doc["downtime_by_reason"] == [{"reason": 1000, "seconds": 47 * 60.0}]
    assert [p["period"] for p in doc["parts"]] == ["2026-11-25/day"]
    assert doc["skipped_rows"] == []


def test_text_report_for_people() -> None:
    code, text = run(BASE)
    assert code == 0
    assert "OEE           74.8 %" in text
    assert "availability  88.8 %" in text and "die crack" in text
    assert "Asia/Shanghai" in text


def test_per_cycle_results_counters_and_bad_rows(tmp_path: Path, capsys) -> None:
    states = tmp_path / "states.csv"
    states.write_text(
        "time,state,reason\n"
        "0,running,\n"
        "600000000000,idle,3\n"
        "660000000000,runing,\n"  # typo: skipped, reported
        "700000000000,running,\n"
        "3600000000000,idle,\n"
    )
    cycles = tmp_path / "cycles.csv"
    cycles.write_text("time,result\n60000000000,good\n120000000000,ng\n180000000000,maybe\n")
    code, text = run(["--states", str(states), "--counts", str(cycles), "--json",
                      "--ideal-cycle-s", "60", "--microstop-s", "30"])  # fmt: skip
    assert code == 0
    doc = json.loads(text)
    assert doc["produced"] == 2 and doc["good"] == 1
    assert doc["adot_ns"] == 100 * 10**9 and doc["apt_ns"] == 3500 * 10**9
    assert len(doc["skipped_rows"]) == 2
    err = capsys.readouterr().err
    assert "states.csv:4" in err and "runing" in err and "cycles.csv:4" in err

    counters = tmp_path / "counters.csv"
    counters.write_text("time,good_total,reject_total\n0,100,5\n1800000000000,130,6\n")
    code, text = run(["--states", str(states), "--counts", str(counters), "--json"])
    doc = json.loads(text)
    assert code == 0 and doc["good"] == 30 and doc["rejected"] == 1
    assert doc["ratios"]["performance"] is None and doc["undefined"]["performance"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--states", "/nonexistent.csv", "--counts", "/nonexistent.csv"], "cannot read"),
        (["--by", "shift"], "--by needs --shifts"),
        (["--shifts", "/nonexistent.toml"], "file not found"),
        (["--timezone", "Mars/Olympus"], "unknown timezone"),
        (["--from", "yesterday"], "--from/--to"),
    ],
)
def test_unusable_input_exits_2_with_a_message(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    states = tmp_path / "s.csv"
    states.write_text("time,state\n0,running\n")
    counts = tmp_path / "c.csv"
    counts.write_text("time,good,reject\n")
    base = ["--states", str(states), "--counts", str(counts)]
    code, _ = run([*base, *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_wrong_header_and_no_valid_rows(tmp_path: Path, capsys) -> None:
    states = tmp_path / "s.csv"
    states.write_text("when,what\n0,running\n")
    counts = tmp_path / "c.csv"
    counts.write_text("time,good,reject\n")
    assert run(["--states", str(states), "--counts", str(counts)])[0] == 2
    assert "expected a header with columns time,state" in capsys.readouterr().err
    states.write_text("time,state\nnot-a-time,running\n")
    assert run(["--states", str(states), "--counts", str(counts)])[0] == 2
    assert "no valid state rows" in capsys.readouterr().err


def test_help_documents_the_csv_formats(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        oee_cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "time,state[,reason]" in out and "time,good,reject" in out and "time,result" in out


KILN = [
    "--pushes", str(EXAMPLES / "kiln_pushes.csv"),
    "--gradings", str(EXAMPLES / "kiln_gradings.csv"),
    "--nameplate-per-h", "1.2", "--timezone", "Asia/Shanghai",
    "--from", "2026-11-25T00:00", "--to", "2026-11-26T00:00", "--json",
]  # fmt: skip


def test_tunnel_kiln_example_before_and_after_the_gradings_arrive() -> None:
    code, text = run([*KILN, "--as-of", "2026-11-26T10:00"])
    early = json.loads(text)
    assert code == 0
    # 24 cars against 1.2 cars/h for 24 h
    assert early["ratios"]["performance"] == pytest.approx(24 / 28.8)
    assert early["ratios"]["graded_share"] == 0.5
    assert early["ratios"]["quality"] == pytest.approx(0.96)  # car 105's re-count not yet in
    assert "provisional" in early["notes"][0]
    code, text = run(KILN)
    final = json.loads(text)
    assert final["ratios"]["quality"] == pytest.approx((11 * 96 + 90 + 12 * 98) / 2400)
    assert final["ratios"]["oee"] == pytest.approx(24 / 28.8 * final["ratios"]["quality"])
    assert final["notes"] == []


def test_kiln_mode_needs_a_nameplate(capsys) -> None:
    code, _ = run(["--pushes", str(EXAMPLES / "kiln_pushes.csv")])
    assert code == 2 and "--nameplate-per-h" in capsys.readouterr().err
    code, _ = run(["--counts", str(EXAMPLES / "counts.csv")])
    assert code == 2 and "--states and --counts are required" in capsys.readouterr().err
