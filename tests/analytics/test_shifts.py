"""Shift calendars: local time, night shifts, breaks, holidays, planned downtime, DST, bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics.shifts import PLANNED_BUSY, PLANNED_DOWN, ShiftCalendar
from core.config import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oee" / "shifts.toml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
S = 1_000_000_000


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz=SHANGHAI) -> int:
    moment = dt.datetime(year, month, day, hour, minute, tzinfo=tz)
    return int(moment.timestamp()) * S


THREE_SHIFTS = """
timezone = "Asia/Shanghai"
holidays = ["2026-10-01"]
[[shift]]
name = "A"
start = "06:00"
end = "14:00"
days = ["mon", "tue", "wed", "thu", "fri"]
[[shift]]
name = "night"
start = "22:00"
end = "06:00"
days = ["mon"]
breaks = [{ start = "23:30", end = "00:10" }]
[[planned_downtime]]
start = "2026-11-24T08:00"
end = "2026-11-24T09:00"
reason = "die change trial"
"""


def test_example_calendar_loads_and_plans_the_worked_example_shift() -> None:
    calendar = ShiftCalendar.load(EXAMPLE)
    day = ns(2026, 11, 25)  # a Wednesday
    shifts = calendar.instances(day, day + 86400 * S)
    assert [(i.name, i.date.isoformat()) for i in shifts] == [("day", "2026-11-25")]
    only = shifts[0]
    assert only.start_ns == ns(2026, 11, 25, 8) and only.end_ns == ns(2026, 11, 25, 16)
    assert only.period == "2026-11-25/day"
    plan = calendar.planned(day, day + 86400 * S)
    lengths = plan.edges[1:] - plan.edges[:-1]
    assert lengths[plan.level == PLANNED_BUSY].sum() == 420 * 60 * S
    assert lengths[plan.level == PLANNED_DOWN].sum() == 60 * 60 * S
    assert plan.edges[0] == day and plan.edges[-1] == day + 86400 * S


def test_night_shift_crosses_midnight_with_a_break_across_it() -> None:
    calendar = ShiftCalendar.parse(THREE_SHIFTS)
    monday = ns(2026, 11, 23)
    shifts = calendar.instances(monday, monday + 2 * 86400 * S)
    night = next(i for i in shifts if i.name == "night")
    assert night.date == dt.date(2026, 11, 23)
    assert night.start_ns == ns(2026, 11, 23, 22) and night.end_ns == ns(2026, 11, 24, 6)
    assert night.breaks == ((ns(2026, 11, 23, 23, 30), ns(2026, 11, 24, 0, 10)),)
    # Tuesday's A shift has one hour of one-off planned downtime.
    plan = calendar.planned(ns(2026, 11, 24, 6), ns(2026, 11, 24, 14))
    lengths = plan.edges[1:] - plan.edges[:-1]
    assert lengths[plan.level == PLANNED_DOWN].sum() == 3600 * S
    assert lengths[plan.level == PLANNED_BUSY].sum() == 7 * 3600 * S


def test_holidays_and_weekdays() -> None:
    calendar = ShiftCalendar.parse(THREE_SHIFTS)
    holiday = ns(2026, 10, 1)  # a Thursday, but a holiday
    assert calendar.instances(holiday, holiday + 86400 * S) == []
    saturday = ns(2026, 11, 28)
    assert calendar.instances(saturday, saturday + 86400 * S) == []


def test_instances_overlapping_the_window_edges_are_included() -> None:
    calendar = ShiftCalendar.parse(THREE_SHIFTS)
    # 03:00 Tuesday is inside Monday's night shift.
    t = ns(2026, 11, 24, 3)
    shifts = calendar.instances(t, t + 3600 * S)
    assert [i.period for i in shifts] == ["2026-11-23/night"]


def test_daylight_saving_day_has_23_planned_hours() -> None:
    calendar = ShiftCalendar.parse(
        'timezone = "Europe/Berlin"\n[[shift]]\nname = "all"\nstart = "00:00"\nend = "24:00"\n'
    )
    berlin = ZoneInfo("Europe/Berlin")
    day = ns(2026, 3, 29, tz=berlin)  # clocks go forward at 02:00
    (shift,) = calendar.instances(day + 3600 * S, day + 2 * 3600 * S)
    # Shifts are wall-clock times: midnight to midnight is 23 h of elapsed time that day...
    assert shift.start_ns == day and shift.end_ns - shift.start_ns == 23 * 3600 * S
    # ...and the next day's shift starts exactly where it ended.
    following = calendar.instances(day + 30 * 3600 * S, day + 31 * 3600 * S)
    assert following[0].start_ns == shift.end_ns


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('timezone = "Mars/Olympus"\n[[shift]]\nname="a"\nstart="08:00"\nend="16:00"',
         "timezone", "IANA"),
        ('timezone = "UTC"\n[[shift]]\nname="a"\nstart="8 am"\nend="16:00"',
         "shift[0].start", "HH:MM"),
        ('timezone = "UTC"\n[[shift]]\nname="a"\nstart="08:00"\nend="16:00"\ndays=["funday"]',
         "shift[0].days", "mon..sun"),
        ('timezone = "UTC"\n[[shift]]\nname="a"\nstart="08:00"\nend="16:00"\n'
         'breaks=[{start="17:00", end="17:30"}]', "shift[0].breaks[0].end", "inside"),
        ('timezone = "UTC"\n[[shift]]\nname="a"\nstart="08:00"\nend="16:00"\n'
         '[[shift]]\nname="b"\nstart="15:00"\nend="20:00"', "shift", "overlap"),
        ('timezone = "UTC"\nshifts = []', "shifts", "unknown key"),
        ('timezone = "UTC"', "shift", "missing"),
        ('timezone = "UTC"\n[[shift]]\nname="a"\nstart="08:00"\nend="16:00"\n'
         '[[planned_downtime]]\nstart="2026-01-02T10:00"\nend="2026-01-02T09:00"',
         "planned_downtime[0].end", "after start"),
    ],
)  # fmt: skip
def test_broken_calendars_name_file_key_and_expectation(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        ShiftCalendar.parse(text, "shifts.toml")
    assert err.value.file == "shifts.toml"
    assert err.value.key == key
    assert expected in err.value.expected


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        ShiftCalendar.load(tmp_path / "nope.toml")
