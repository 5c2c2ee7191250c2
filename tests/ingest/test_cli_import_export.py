"""``kilnworks import`` / ``kilnworks export`` end to end through the dispatcher, on SQLite."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from core.cli import main as kilnworks
from ingest.cli_import import import_csv
from ingest.store_sqlite import SQLiteStore
from tests.ingest._helpers import KILN

PRESS = "xinghai/plant-1/press-shop/press-4"


def sample(path: Path, rows: list[str]) -> Path:
    path.write_text("time,asset,field,value,unit,quality\n" + "".join(r + "\n" for r in rows))
    return path


def test_import_then_export_filtered(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = sample(
        tmp_path / "in.csv",
        [
            f"2026-01-01T00:00:00Z,{KILN},zone1_tc1_temperature_c,20.5,°C,good",
            f"2026-01-01T01:00:00Z,{KILN},zone1_tc1_temperature_c,120.25,°C,good",
            f"2026-01-01T02:00:00Z,{KILN},zone1_tc1_temperature_c,240,°C,uncertain",
            f"2026-01-01T01:00:00Z,{KILN},burner_on,true,,good",
            f"2026-01-01T01:00:00Z,{PRESS},cycle_count,17,,good",
        ],
    )
    url = f"sqlite:///{tmp_path}/kw.db"
    assert kilnworks(["import", str(src), "--store", url]) == 0
    err = capsys.readouterr().err
    assert "5 readings imported" in err and "0 rows refused" in err
    assert "rows read (100%)" in err  # the final progress line

    out = tmp_path / "out.csv"
    code = kilnworks(
        ["export", "--store", url, "--asset", "xinghai/plant-1/firing-shop",
         "--field", "zone1_tc1_temperature_c", "--start", "2026-01-01T00:30:00Z",
         "--end", "2026-01-01T02:00:00Z", "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    assert out.read_bytes().decode() == (
        "time,asset,field,value,unit,quality\r\n"
        f"2026-01-01T01:00:00.000000000Z,{KILN},zone1_tc1_temperature_c,120.25,°C,good\r\n"
    )
    assert kilnworks(["export", "--store", url, "--asset", "xinghai", "--time-format", "ns"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[1:3] == [
        f"1767229200000000000,{KILN},burner_on,true,,good",
        f"1767225600000000000,{KILN},zone1_tc1_temperature_c,20.5,°C,good",
    ]
    assert lines[-1] == f"1767229200000000000,{PRESS},cycle_count,17.0,,good"


def test_refused_rows_are_listed_by_line_and_the_good_ones_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = sample(
        tmp_path / "in.csv",
        [
            f"2026-01-01T00:00:00Z,{KILN},t_c,1,,good",
            f"2026-01-01T00:00:01Z,{KILN},t_c,NaN,,good",
            f"2026-01-01T00:00:02Z,{KILN},t_c,3,,good",
            f"2026-01-01T25:00:00Z,{KILN},t_c,4,,good",
        ],
    )
    rejects = tmp_path / "rejects.csv"
    url = f"sqlite:///{tmp_path}/kw.db"
    code = kilnworks(["import", str(src), "--store", url, "-q", "--rejects", str(rejects)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{src}:3: value 'NaN' is not a finite number" in err
    assert f"{src}:5: time" in err
    assert "2 readings imported" in err and "2 rows refused" in err
    assert rejects.read_text().splitlines()[0] == "line,reason"
    assert [line.split(",")[0] for line in rejects.read_text().splitlines()[1:]] == ["3", "5"]
    store = SQLiteStore(tmp_path / "kw.db")
    assert store.count() == 2


def test_reimport_is_harmless(tmp_path: Path) -> None:
    src = sample(tmp_path / "in.csv", [f"{i},{KILN},t_c,{i}.5,,good" for i in range(100)])
    url = f"sqlite:///{tmp_path}/kw.db"
    assert kilnworks(["import", str(src), "--store", url, "-q"]) == 0
    assert kilnworks(["import", str(src), "--store", url, "-q"]) == 0
    assert SQLiteStore(tmp_path / "kw.db").count() == 100


def test_import_from_standard_input(tmp_path: Path) -> None:
    from ingest import cli_import

    data = f"time,asset,field,value\n7,{KILN},t_c,2.5\n".encode()
    url = f"sqlite:///{tmp_path}/kw.db"
    assert cli_import.main(["-", "--store", url], stdin=io.BytesIO(data)) == 0
    assert SQLiteStore(tmp_path / "kw.db").latest(KILN)["t_c"].value == 2.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "nope.csv", "--store", "sqlite:///:memory:"], "cannot read nope.csv"),
        (["import", "x.csv", "--store", "mysql://root:hunter2@db/x"], "unknown scheme 'mysql'"),
        (["export", "--store", "sqlite:///:memory:", "--start", "noon"], "time 'noon'"),
        (["export"], "--store URL is required"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILNWORKS_STORE", raising=False)
    assert kilnworks(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "hunter2" not in err


def test_a_bad_header_imports_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"when,asset,field,value\n1,{KILN},t_c,1\n")
    assert kilnworks(["import", str(src), "--store", f"sqlite:///{tmp_path}/kw.db"]) == 2
    assert "unknown column 'when'" in capsys.readouterr().err


def _peak_import_bytes(tmp_path: Path, rows: int) -> int:
    src = tmp_path / f"big{rows}.csv"
    with src.open("w") as f:
        f.write("time,asset,field,value\n")
        for i in range(rows):
            f.write(f"{i},{KILN},zone{i % 7}_tc1_temperature_c,{i * 0.25}\n")
    store = SQLiteStore()
    tracemalloc.start()
    try:
        with src.open(newline="") as stream:
            imported, _ = import_csv(stream, store, name="big", err=io.StringIO(), chunk_rows=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert imported == rows == store.count()
    return peak


def test_import_streams_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = _peak_import_bytes(tmp_path, 2_000)
    large = _peak_import_bytes(tmp_path, 12_000)  # six times the rows
    assert large < small * 1.5, (small, large)
