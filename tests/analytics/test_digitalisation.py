"""Digitalisation progress: measured indicators, the documented index, history, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.digitalisation import (
    SelfAssessment,
    expected_samples,
    latest_assessment,
    load_assessments,
    observe,
    parse_assessments,
    progress,
    progress_history,
)
from core.config import ConfigError, parse_toml

S = 1_000_000_000
T0 = 1_764_000_000 * S


def seen(**overrides):
    src = T0 + np.arange(100, dtype=np.int64) * S
    base = dict(
        registered_assets=4,
        connected_assets=3,
        expected_samples=1000,
        received_samples=900,
        source_ns=src,
        received_ns=src + np.arange(1, 101, dtype=np.int64) * S // 5,  # 0.2 .. 20 s late
        firings=10,
        firings_with_programme=8,
        firings_scored=6,
        unplanned_downtime_ns=100 * S,
        downtime_with_reason_ns=40 * S,
        latency_target_s=10.0,
    )
    base.update(overrides)
    return observe(**base)


def test_indicators_are_the_documented_shares() -> None:
    obs = seen()
    ind = obs.indicators()
    assert ind == pytest.approx(
        {"connected": 0.75, "completeness": 0.9, "timeliness": 0.5, "conformance": 0.6,
         "reason_coded": 0.4}
    )  # fmt: skip
    assert obs.latency_p50_s == pytest.approx(np.percentile(np.arange(1, 101) / 5, 50))
    assert obs.latency_p95_s == pytest.approx(19.01)
    assert obs.latency_samples == 100 and obs.skewed_samples == 0


def test_index_combines_evidence_and_self_assessment() -> None:
    assessment = SelfAssessment(T0, personnel=2, technology=3, resources=2, manufacturing=3)
    rec = progress("xinghai", T0, seen(), assessment)
    measured = (0.75 + 0.9 + 0.5 + 0.6 + 0.4) / 5
    assert rec.measured_index == pytest.approx(measured)
    assert rec.assessed_level == 2.5
    assert rec.progress_index == pytest.approx(100 * ((2.5 - 1) / 4 + measured) / 2)
    assert rec.gap == pytest.approx((2.5 - 1) / 4 - measured)
    assert rec.evidence_level == pytest.approx(1 + 4 * measured)
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["assessed_level_name"] == "standardised"
    assert d["observations"]["programme_share"] == 0.8


def test_a_self_assessment_far_ahead_of_the_data_is_flagged() -> None:
    bold = SelfAssessment(T0, personnel=5, technology=5, resources=5, manufacturing=5)
    rec = progress("e", T0, seen(connected_assets=0, received_samples=0), bold)
    assert rec.gap > 0.25
    assert any("ahead of platform evidence" in n for n in rec.notes)


def test_undefined_indicators_are_left_out_not_scored() -> None:
    obs = seen(firings=0, firings_with_programme=0, firings_scored=0,
               unplanned_downtime_ns=0, downtime_with_reason_ns=0)  # fmt: skip
    rec = progress("e", T0, obs, None)
    assert rec.indicators["conformance"] is None and rec.indicators["reason_coded"] is None
    assert rec.measured_index == pytest.approx((0.75 + 0.9 + 0.5) / 3)
    assert rec.progress_index == pytest.approx(100 * rec.measured_index)
    assert any("not measurable" in n for n in rec.notes)
    assert any("no self-assessment" in n for n in rec.notes)
    nothing = progress("e", T0, observe(registered_assets=0, connected_assets=0,
                                        expected_samples=0, received_samples=0), None)  # fmt: skip
    assert nothing.progress_index is None and nothing.measured_index is None


def test_completeness_caps_at_one_and_clock_skew_is_counted() -> None:
    src = np.array([10, 20, 30], np.int64) * S
    obs = seen(received_samples=1200, source_ns=src, received_ns=src - np.array([1, 0, 0]) * S)
    assert obs.indicators()["completeness"] == 1.0
    assert obs.to_dict()["completeness_raw"] == 1.2
    assert obs.skewed_samples == 1
    assert any("before their source time" in n for n in progress("e", T0, obs, None).notes)


def test_history_orders_and_reports_change() -> None:
    a1 = SelfAssessment(T0, 1, 1, 1, 1)
    a2 = SelfAssessment(T0 + 90 * 86400 * S, 2, 2, 2, 2)
    early = progress("xinghai", T0, seen(connected_assets=1), a1)
    later = progress("xinghai", T0 + 90 * 86400 * S, seen(), a2)
    other = progress("dalian", T0, seen(), None)
    hist = progress_history([later, other, early])
    assert [(r.enterprise, r.at_ns) for r in hist] == [
        ("dalian", T0), ("xinghai", T0), ("xinghai", T0 + 90 * 86400 * S),
    ]  # fmt: skip
    assert hist[0].delta_index is None and hist[1].delta_index is None
    assert hist[2].delta_index == pytest.approx(later.progress_index - early.progress_index)
    assert hist[2].delta_index > 0


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="connected_assets"):
        seen(connected_assets=5)
    with pytest.raises(ValueError, match="expected a count"):
        seen(firings=-1)
    with pytest.raises(ValueError, match="same"):
        seen(received_ns=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"level 1\.\.5"):
        SelfAssessment(T0, 0, 3, 3, 3)
    with pytest.raises(ValueError, match="missing element"):
        SelfAssessment.from_mapping({"personnel": 2}, T0)
    with pytest.raises(ValueError, match="unknown element"):
        SelfAssessment.from_mapping(
            {"personnel": 2, "technology": 2, "resources": 2, "manufacturing": 2, "x": 1}, T0
        )
    ok = SelfAssessment.from_mapping(
        {"personnel": 2, "technology": 3.5, "resources": 2, "manufacturing": 4}, T0
    )
    assert ok.level == pytest.approx(2.875)


def test_assessments_file_and_latest_known() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "digitalisation" / "assessments.toml"
    by_firm = load_assessments(path)
    assert set(by_firm) == {"xinghai", "dalian"} and len(by_firm["xinghai"]) == 2
    march, september = by_firm["xinghai"]
    assert march.level == pytest.approx(1.875) and september.level == 2.5
    assert latest_assessment(by_firm["xinghai"], september.assessed_ns - 1) is march
    assert latest_assessment(by_firm["xinghai"], september.assessed_ns) is september
    assert latest_assessment(by_firm["xinghai"], march.assessed_ns - 1) is None


def test_broken_assessment_file_names_the_key() -> None:
    text = '[[assessment]]\nenterprise = "x"\ndate = 2026-01-01\npersonnel = 7\n'
    with pytest.raises(ConfigError) as err:
        parse_assessments(parse_toml(text, "a.toml"))
    assert err.value.key == "assessment[0].personnel" and "[1.0, 5.0]" in err.value.expected


def test_expected_samples() -> None:
    # 12 thermocouples sampled every 10 s for an hour
    assert expected_samples(12, 3600 * S, 10 * S) == 12 * 360
    with pytest.raises(ValueError):
        expected_samples(1, 10, 0)
