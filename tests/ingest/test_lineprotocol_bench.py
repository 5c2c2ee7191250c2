"""The encoding benchmark still runs and its encoder and baseline still agree (smoke test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lineprotocol_encode.py"


def test_quick_benchmark_prints_json_with_ratios(capsys):
    spec = importlib.util.spec_from_file_location("lineprotocol_encode", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # small sizes; the script itself asserts encoder output == f-string output
    assert bench.main(["--readings", "5000", "--repeat", "1", "--point-sample", "500"]) == 0
    report = json.loads(capsys.readouterr().out)
    for distribution in ("sensor", "random"):
        figures = report[distribution]
        assert figures["batch_readings_per_s"] > 0 and figures["ratio_batch_vs_fstring"] > 0
