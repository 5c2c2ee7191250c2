"""Tunnel kilns: car positions from pushes, designed and experienced curves."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.conformance import judge_curve
from analytics.tunnel import (
    TunnelProfile,
    car_curves,
    car_positions_m,
    experienced_curve_c,
    tunnel_setpoint_c,
)
from core.config import ConfigError, parse_toml

H = 3_600_000_000_000


def profile() -> TunnelProfile:
    # 100 m, 10 cars of 10 m: preheat to 1000 °C, firing 1300 °C at 40-60 m, cool to 100 °C.
    return TunnelProfile(
        np.array([0.0, 40.0, 60.0, 100.0]), np.array([100.0, 1300.0, 1300.0, 100.0]), 100.0, 10
    )


def test_car_moves_one_pitch_per_push() -> None:
    pushes = np.arange(12, dtype=np.int64) * H  # one push an hour
    t = np.array([-1, 0, H // 2, 3 * H + 1, 9 * H, 10 * H], dtype=np.int64)
    pos = car_positions_m(pushes, 0, t, 10.0, 100.0)
    # before entry NaN; after the entry push centre at 5 m; after 4 pushes 35 m; 10 pushes: out
    assert np.isnan(pos[0])
    np.testing.assert_allclose(pos[1:5], [5.0, 5.0, 35.0, 95.0])
    assert np.isnan(pos[5])
    sp = tunnel_setpoint_c(profile(), pushes, np.array([0, 2]), t)
    assert sp.shape == (2, 6)
    np.testing.assert_allclose(sp[0, 3], 100 + 35 * 30)  # 30 °C/m on the preheat slope
    np.testing.assert_allclose(sp[1, 3], 100 + 15 * 30)


def test_experienced_curve_interpolates_zones_and_never_bridges_a_missing_zone() -> None:
    zones_m = np.array([10.0, 50.0, 90.0])
    temps = np.array([[400.0, 400.0], [1300.0, np.nan], [200.0, 200.0]])
    pos = np.array([[30.0, 30.0], [5.0, 95.0], [np.nan, 50.0]])
    out = experienced_curve_c(zones_m, temps, pos)
    np.testing.assert_allclose(out[0, 0], 850.0)
    assert np.isnan(out[0, 1])  # zone 2 missing: not bridged from zones 1 and 3
    np.testing.assert_allclose(out[1], [400.0, 200.0])  # beyond the end zones: nearest zone
    assert np.isnan(out[2, 0]) and np.isnan(out[2, 1])  # outside kiln / zone at 50 m missing


def test_car_judged_against_designed_profile() -> None:
    prof = profile()
    pushes = np.arange(0, 14, dtype=np.int64) * H
    t = np.arange(0, 12 * H, 60 * 1_000_000_000, dtype=np.int64)
    zones_m = np.linspace(5, 95, 10)
    # The kiln holds its profile except zone 5 (45 m) runs 25 °C cold.
    zone_temps = np.repeat(prof.at(zones_m)[:, None], t.size, axis=1)
    zone_temps[4] -= 25.0
    (curve,) = car_curves(prof, pushes, [0], t, zones_m, zone_temps)
    report = judge_curve(t, curve.setpoint_c, curve.temperature_c[None, :], name="car 0")
    assert report.verdict == "nonconforming"
    (exc,) = report.excursions
    assert exc.worst_deviation_c == pytest.approx(-25.0)
    # the car stands at 45 m for the hour after its 5th push (entry push = 1st)
    assert exc.start_ns == 4 * H and exc.end_ns == 5 * H - 60_000_000_000


def test_profile_from_toml_checks_points() -> None:
    t = parse_toml(
        "length_m = 96.0\ncars_in_kiln = 48\n"
        "[[point]]\nposition_m = 0.0\ntemperature_c = 50.0\n"
        "[[point]]\nposition_m = 48.0\ntemperature_c = 1300.0\n",
        "tunnel.toml",
    )
    prof = TunnelProfile.from_table(t)
    assert prof.pitch_m == 2.0
    bad = parse_toml(
        "length_m = 96.0\ncars_in_kiln = 48\n"
        "[[point]]\nposition_m = 50.0\ntemperature_c = 50.0\n"
        "[[point]]\nposition_m = 10.0\ntemperature_c = 1300.0\n",
        "tunnel.toml",
    )
    with pytest.raises(ConfigError, match=r"tunnel\.toml: point: .*increase"):
        TunnelProfile.from_table(bad)


def test_push_rate_against_the_set_rate() -> None:
    from analytics.tunnel import push_rate

    set_rate = 1.2  # cars per hour: one push every 50 minutes
    pushes = np.arange(25, dtype=np.int64) * 50 * 60 * 1_000_000_000
    steady = push_rate(pushes, set_rate)
    assert steady.cars_per_hour == pytest.approx(1.2) and steady.within_tolerance
    assert steady.late_pushes == 0 and steady.longest_interval_s == 3000
    # one push 40 minutes late: 24 cars in 20 h 40 min = 1.161 cars/h, 3.2 % slow
    late = pushes.copy()
    late[12:] += 40 * 60 * 1_000_000_000
    r = push_rate(late, set_rate)
    assert r.cars_per_hour == pytest.approx(24 / (20 + 40 / 60))
    assert not r.within_tolerance and r.late_pushes == 1 and r.longest_interval_s == 5400
    assert push_rate(pushes[:1], set_rate).to_dict()["cars_per_hour"] is None
    with pytest.raises(ValueError, match="set_cars_per_hour"):
        push_rate(pushes, 0)
