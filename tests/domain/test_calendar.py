"""Business calendar: hand-computed cases and properties.

Colombian holidays used below, as listed by the `holidays` package (checked in
test_colombian_holidays_assumed_by_these_tests): 2026-01-01 (Thu), 2026-01-12 (Mon, Reyes Magos
moved from Tue 6 by the Emiliani law), 2026-03-23 (Mon, San José), 2026-04-02/03 (Thu/Fri of Holy
Week), 2026-12-25 (Fri), 2027-01-01 (Fri). 2026-03-02 and 2026-03-09 are Mondays.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.domain.calendar import (
    DEFAULT_HOURS,
    BusinessCalendar,
    add_business_time,
    business_minutes_between,
    business_time_between,
    minutes_per_business_day,
    next_opening,
)

BOG = ZoneInfo("America/Bogota")
MAD = ZoneInfo("Europe/Madrid")
DEFAULT = BusinessCalendar.default()
SPLIT = BusinessCalendar(
    name="split",
    hours={wd: ((time(8), time(12)), (time(14), time(18))) for wd in range(5)},
)
MADRID = BusinessCalendar(
    name="madrid",
    timezone="Europe/Madrid",
    hours={wd: ((time(9), time(14)), (time(15), time(18))) for wd in range(5)},
    country="ES",
)
ALWAYS = BusinessCalendar.always()

# No example database: it would write a .hypothesis directory into the working tree.
PROPS = settings(max_examples=300, deadline=None, database=None)


def bog(*args: int) -> datetime:
    return datetime(*args, tzinfo=BOG)


def mad(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=MAD, fold=fold)


def utc(at: datetime) -> datetime:
    """Compare and subtract in UTC: Python does same-zone aware arithmetic on the wall clock."""
    return at.astimezone(UTC)


def test_colombian_holidays_assumed_by_these_tests():
    co = holidays.country_holidays("CO", years=[2026, 2027])
    for day in [
        "2026-01-01",
        "2026-01-12",
        "2026-03-23",
        "2026-04-02",
        "2026-04-03",
        "2026-12-25",
        "2027-01-01",
        "2027-01-11",
    ]:
        assert date.fromisoformat(day) in co, day
    for day in ["2026-01-06", "2026-01-13", "2026-03-19", "2026-03-30", "2026-12-31", "2027-01-04"]:
        assert date.fromisoformat(day) not in co, day
    es = holidays.country_holidays("ES", years=2026)
    for day in ["2026-03-27", "2026-03-30", "2026-10-23", "2026-10-26"]:
        assert date.fromisoformat(day) not in es, day


# ----------------------------------------------------------------------------- the value


def test_default_calendar():
    cal = BusinessCalendar.default()
    assert cal == BusinessCalendar()
    assert cal.name == "default"
    assert cal.timezone == "America/Bogota"
    assert cal.country == "CO"
    assert cal.closed_days == frozenset()
    assert cal.always_open is False
    assert dict(cal.hours) == {wd: ((time(8), time(18)),) for wd in range(5)}
    assert cal.hours == DEFAULT_HOURS
    assert cal.zone == BOG


def test_calendar_survives_pickle_and_deepcopy():
    for cal in (DEFAULT, SPLIT, ALWAYS):
        add_business_time(bog(2026, 3, 6, 17), 120, cal)  # fill the per-day memo first
        for clone in (pickle.loads(pickle.dumps(cal)), copy.deepcopy(cal)):
            assert clone == cal and hash(clone) == hash(cal)
            assert add_business_time(bog(2026, 3, 6, 17), 120, clone) == add_business_time(
                bog(2026, 3, 6, 17), 120, cal
            )


def test_calendar_is_immutable_and_hashable():
    raw = {0: [(time(8), time(18))]}
    cal = BusinessCalendar(hours=raw)
    raw[1] = [(time(8), time(18))]
    assert dict(cal.hours) == {0: ((time(8), time(18)),)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cal.hours[1] = ((time(8), time(18)),)  # type: ignore[index]
    same = BusinessCalendar(hours={0: ((time(8), time(18)),)})
    assert cal == same and hash(cal) == hash(same)
    assert len({cal, same, DEFAULT}) == 2
    assert dataclasses.replace(DEFAULT, name="x") != DEFAULT


def test_inputs_are_normalised():
    cal = BusinessCalendar(
        hours={"1": [["14:00", "18:00"], ["08:00", "12:00"]], 2: []},
        closed_days=["2026-03-10", date(2026, 3, 11)],
    )
    assert dict(cal.hours) == {1: ((time(8), time(12)), (time(14), time(18)))}
    assert cal.closed_days == frozenset({date(2026, 3, 10), date(2026, 3, 11)})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hours": {0: ((time(18), time(8)),)}},
        {"hours": {0: ((time(8), time(8)),)}},
        {"hours": {0: ((time(8), time(13)), (time(12), time(18)))}},
        {"hours": {7: ((time(8), time(18)),)}},
        {"hours": {0: ((time(8), time(18)),), "0": ((time(8), time(18)),)}},
        {"hours": {0: (time(8), time(18))}},
        {"hours": {0: (("08:00", "25:00"),)}},
        {"hours": {0: (("24:00", "24:00"),)}},
        {"hours": {0: ((time(8, tzinfo=UTC), time(18)),)}},
        {"hours": {}},
        {"hours": [(time(8), time(18))]},
        {"timezone": "Mars/Olympus"},
        {"timezone": ""},
        {"country": "XX"},
        {"closed_days": ["not a date"]},
        {"closed_days": [datetime(2026, 3, 10, tzinfo=BOG)]},
        {"name": ""},
        {"always_open": "yes"},
    ],
)
def test_invalid_calendars_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BusinessCalendar(**kwargs)


def test_is_working_day():
    assert DEFAULT.is_working_day(date(2026, 3, 2))  # Monday
    assert DEFAULT.is_working_day(date(2026, 3, 6))  # Friday
    assert not DEFAULT.is_working_day(date(2026, 3, 7))  # Saturday
    assert not DEFAULT.is_working_day(date(2026, 3, 8))  # Sunday
    assert not DEFAULT.is_working_day(date(2026, 1, 12))  # Reyes Magos (Monday)
    assert DEFAULT.is_working_day(date(2026, 1, 6))  # the original date is a working day
    assert not DEFAULT.is_working_day(date(2026, 4, 3))  # Good Friday
    assert BusinessCalendar(country=None).is_working_day(date(2026, 1, 12))
    closed = BusinessCalendar(closed_days=frozenset({date(2026, 3, 9)}))
    assert not closed.is_working_day(date(2026, 3, 9))
    assert ALWAYS.is_working_day(date(2026, 3, 7))
    with pytest.raises(TypeError):
        DEFAULT.is_working_day(bog(2026, 3, 2, 9))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (bog(2026, 3, 2, 8), True),
        (bog(2026, 3, 2, 7, 59, 59), False),
        (bog(2026, 3, 2, 17, 59, 59, 999999), True),
        (bog(2026, 3, 2, 18), False),
        (bog(2026, 3, 7, 10), False),  # Saturday
        (bog(2026, 1, 12, 10), False),  # holiday
        (datetime(2026, 3, 2, 13, tzinfo=UTC), True),  # 08:00 Bogota
        (datetime(2026, 3, 2, 12, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 2, 23, tzinfo=UTC), False),  # 18:00 Bogota
        (mad(2026, 3, 2, 14), True),  # 14:00 CET = 08:00 Bogota
    ],
)
def test_is_open(at, expected):
    assert DEFAULT.is_open(at) is expected


def test_always_open_calendar():
    cal = BusinessCalendar.always(name="chat", timezone="Europe/Madrid")
    assert cal.always_open and cal.name == "chat" and cal.timezone == "Europe/Madrid"
    assert dict(cal.hours) == {} and cal.country is None and cal.closed_days == frozenset()
    # hours, holidays and closed days do not apply to 7x24 calendars (normalised away)
    normalised = BusinessCalendar(always_open=True, closed_days=[date(2026, 1, 1)])
    assert normalised == BusinessCalendar(name="default", always_open=True)
    assert normalised == dataclasses.replace(ALWAYS, name="default")
    assert cal.is_open(mad(2026, 12, 25, 3))


# ----------------------------------------------------------------------------- storage


def test_to_dict_of_default_calendar():
    assert DEFAULT.to_dict() == {
        "name": "default",
        "timezone": "America/Bogota",
        "hours": {str(wd): [["08:00", "18:00"]] for wd in range(5)},
        "country": "CO",
        "closed_days": [],
        "always_open": False,
    }


@pytest.mark.parametrize(
    "cal",
    [
        DEFAULT,
        SPLIT,
        MADRID,
        ALWAYS,
        BusinessCalendar.always(name="x", timezone="UTC"),
        BusinessCalendar(
            name="odd",
            timezone="Asia/Kolkata",
            hours={0: ((time(0), time(0)),), 5: ((time(9, 30, 15), time(13, 0, 0, 500)),)},
            country=None,
            closed_days=frozenset({date(2027, 1, 4), date(2026, 12, 31)}),
        ),
    ],
    ids=["default", "split", "madrid", "always", "always-utc", "odd"],
)
def test_dict_round_trip(cal):
    data = cal.to_dict()
    restored = BusinessCalendar.from_dict(json.loads(json.dumps(data)))
    assert restored == cal
    assert hash(restored) == hash(cal)
    assert restored.to_dict() == data


def test_dict_format_of_special_values():
    data = BusinessCalendar(
        hours={5: ((time(0), time(0)),), 6: ((time(9, 30, 15), time(12)),)},
        closed_days=[date(2026, 12, 31), date(2026, 12, 24)],
    ).to_dict()
    assert data["hours"] == {"5": [["00:00", "24:00"]], "6": [["09:30:15", "12:00"]]}
    assert data["closed_days"] == ["2026-12-24", "2026-12-31"]


def test_from_dict_defaults_and_errors():
    assert BusinessCalendar.from_dict({}) == DEFAULT
    assert BusinessCalendar.from_dict({"name": "n", "country": None}) == BusinessCalendar(
        name="n", country=None
    )
    with pytest.raises(ValueError, match="unknown"):
        BusinessCalendar.from_dict({"nme": "typo"})
    with pytest.raises(ValueError):
        BusinessCalendar.from_dict([("name", "x")])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- add


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        # within a day; landing exactly at closing stays at closing
        (bog(2026, 3, 2, 10), 60, bog(2026, 3, 2, 11)),
        (bog(2026, 3, 2, 10), 480, bog(2026, 3, 2, 18)),
        (bog(2026, 3, 2, 10), 481, bog(2026, 3, 3, 8, 1)),
        (bog(2026, 3, 2, 8), 600, bog(2026, 3, 2, 18)),
        # Friday 17:00 + 2h = Monday 09:00
        (bog(2026, 3, 6, 17), 120, bog(2026, 3, 9, 9)),
        # weekend starts
        (bog(2026, 3, 7, 10), 60, bog(2026, 3, 9, 9)),
        (bog(2026, 3, 8, 23, 59), 1, bog(2026, 3, 9, 8, 1)),
        # before / after hours
        (bog(2026, 3, 2, 6, 30), 30, bog(2026, 3, 2, 8, 30)),
        (bog(2026, 3, 2, 0, 0), 600, bog(2026, 3, 2, 18)),
        (bog(2026, 3, 2, 18), 30, bog(2026, 3, 3, 8, 30)),
        (bog(2026, 3, 2, 21, 15), 600, bog(2026, 3, 3, 18)),
        # "1 business day" and "5 business days" (600 minutes each)
        (bog(2026, 3, 2, 10), 600, bog(2026, 3, 3, 10)),
        (bog(2026, 3, 6, 10), 3000, bog(2026, 3, 13, 10)),
        # Reyes Magos, Monday 2026-01-12
        (bog(2026, 1, 9, 16), 180, bog(2026, 1, 13, 9)),
        (bog(2026, 1, 12, 10), 30, bog(2026, 1, 13, 8, 30)),
        # San José, Monday 2026-03-23: Fri 10-18 (480) + Tue..Fri (2400) + Mon 30 08-10 (120)
        (bog(2026, 3, 20, 10), 3000, bog(2026, 3, 30, 10)),
        # Holy Thursday and Good Friday
        (bog(2026, 4, 1, 17), 120, bog(2026, 4, 6, 9)),
        # across New Year: Thu 31 Dec, Fri 1 Jan 2027 holiday, weekend, Mon 4 Jan
        (bog(2026, 12, 31, 17), 120, bog(2027, 1, 4, 9)),
        (bog(2026, 12, 24, 12), 1200, bog(2026, 12, 29, 12)),  # 24th 12-18, 28th, 29th 8-12
        # partial minutes: fractional minutes are seconds
        (bog(2026, 3, 2, 10), 0.5, bog(2026, 3, 2, 10, 0, 30)),
        (bog(2026, 3, 2, 17, 59, 30), 1, bog(2026, 3, 3, 8, 0, 30)),
        (bog(2026, 3, 2, 10), 1 / 60, bog(2026, 3, 2, 10, 0, 1)),
        # zero minutes returns the start itself, even outside hours
        (bog(2026, 3, 7, 10), 0, bog(2026, 3, 7, 10)),
        (bog(2026, 3, 2, 10), 0, bog(2026, 3, 2, 10)),
        # negative minutes count backwards; landing at an opening stays there
        (bog(2026, 3, 9, 9), -120, bog(2026, 3, 6, 17)),
        (bog(2026, 3, 3, 8), -600, bog(2026, 3, 2, 8)),
        (bog(2026, 3, 3, 8), -601, bog(2026, 2, 27, 17, 59)),  # Mon 08:00 - 1 = Fri 17:59
        (bog(2026, 1, 13, 9), -180, bog(2026, 1, 9, 16)),
        (bog(2026, 3, 7, 12), -60, bog(2026, 3, 6, 17)),
    ],
)
def test_add_business_time_default(start, minutes, expected):
    result = add_business_time(start, minutes, DEFAULT)
    assert result == expected
    assert result.tzinfo == BOG
    assert result.utcoffset() == timedelta(hours=-5)


def test_add_converts_inputs_from_other_zones():
    # 2026-03-02T13:00Z is 08:00 in Bogota
    result = add_business_time(datetime(2026, 3, 2, 13, tzinfo=UTC), 60, DEFAULT)
    assert result == bog(2026, 3, 2, 9)
    assert result.tzinfo == BOG
    assert (result.hour, result.minute) == (9, 0)
    # 12:00Z is 07:00 in Bogota: the clock starts at 08:00
    assert add_business_time(datetime(2026, 3, 2, 12, tzinfo=UTC), 60, DEFAULT) == bog(
        2026, 3, 2, 9
    )
    # Friday 22:00 UTC = 17:00 Bogota
    assert add_business_time(datetime(2026, 3, 6, 22, tzinfo=UTC), 120, DEFAULT) == bog(
        2026, 3, 9, 9
    )
    # Madrid (CET, +01:00): 2026-03-02 14:00 is 08:00 Bogota
    assert add_business_time(mad(2026, 3, 2, 14), 30, DEFAULT) == bog(2026, 3, 2, 8, 30)
    # Saturday 00:30 in Madrid is still Friday 18:30 in Bogota: closed, clock starts Monday
    assert add_business_time(mad(2026, 3, 7, 0, 30), 60, DEFAULT) == bog(2026, 3, 9, 9)
    # Zero minutes: the same instant, expressed in Bogota time
    zero = add_business_time(datetime(2026, 3, 7, 15, tzinfo=UTC), 0, DEFAULT)
    assert zero == bog(2026, 3, 7, 10) and zero.tzinfo == BOG


def test_extra_closed_day():
    cal = BusinessCalendar(name="bridge", closed_days=frozenset({date(2026, 3, 9)}))
    assert add_business_time(bog(2026, 3, 6, 17), 120, cal) == bog(2026, 3, 10, 9)
    assert business_minutes_between(bog(2026, 3, 6, 17), bog(2026, 3, 10, 9), cal) == 120
    assert business_minutes_between(bog(2026, 3, 9, 8), bog(2026, 3, 9, 18), cal) == 0
    # the default calendar is untouched
    assert add_business_time(bog(2026, 3, 6, 17), 120, DEFAULT) == bog(2026, 3, 9, 9)


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        (bog(2026, 3, 2, 11), 120, bog(2026, 3, 2, 15)),
        (bog(2026, 3, 2, 11), 60, bog(2026, 3, 2, 12)),  # stays at the morning closing
        (bog(2026, 3, 2, 11), 61, bog(2026, 3, 2, 14, 1)),
        (bog(2026, 3, 2, 12, 30), 30, bog(2026, 3, 2, 14, 30)),  # lunch break
        (bog(2026, 3, 2, 12), 0, bog(2026, 3, 2, 12)),
        (bog(2026, 3, 2, 17), 120, bog(2026, 3, 3, 9)),
        (bog(2026, 3, 2, 8), 480, bog(2026, 3, 2, 18)),
        (bog(2026, 3, 2, 8), 481, bog(2026, 3, 3, 8, 1)),
        (bog(2026, 3, 2, 14), -1, bog(2026, 3, 2, 11, 59)),
    ],
)
def test_split_shift(start, minutes, expected):
    assert add_business_time(start, minutes, SPLIT) == expected


def test_split_shift_between_and_day_length():
    assert business_minutes_between(bog(2026, 3, 2, 9), bog(2026, 3, 2, 16), SPLIT) == 300
    assert business_minutes_between(bog(2026, 3, 2, 12), bog(2026, 3, 2, 14), SPLIT) == 0
    assert minutes_per_business_day(SPLIT) == 480
    assert add_business_time(bog(2026, 3, 2, 10), minutes_per_business_day(SPLIT), SPLIT) == bog(
        2026, 3, 3, 10
    )


def test_saturday_half_day():
    hours = dict(DEFAULT_HOURS) | {5: ((time(9), time(13)),)}
    cal = BusinessCalendar(name="sat", hours=hours)
    assert add_business_time(bog(2026, 3, 6, 17), 120, cal) == bog(2026, 3, 7, 10)
    assert add_business_time(bog(2026, 3, 7, 12), 120, cal) == bog(2026, 3, 9, 9)
    assert minutes_per_business_day(cal) == 600


def test_seven_by_twenty_four():
    assert add_business_time(bog(2026, 3, 6, 17), 120, ALWAYS) == bog(2026, 3, 6, 19)
    assert add_business_time(bog(2026, 1, 11, 23), 120, ALWAYS) == bog(2026, 1, 12, 1)
    assert add_business_time(bog(2026, 3, 2, 10), -60, ALWAYS) == bog(2026, 3, 2, 9)
    assert business_minutes_between(bog(2026, 3, 7), bog(2026, 3, 9), ALWAYS) == 2880
    assert business_minutes_between(bog(2026, 3, 9), bog(2026, 3, 7), ALWAYS) == -2880
    assert minutes_per_business_day(ALWAYS) == 1440
    result = add_business_time(datetime(2026, 3, 2, 13, tzinfo=UTC), 0, ALWAYS)
    assert result == bog(2026, 3, 2, 8) and result.tzinfo == BOG
    # elapsed time: a 7x24 calendar in Madrid counts 23 hours on the spring-forward day
    madrid = BusinessCalendar.always(timezone="Europe/Madrid")
    assert business_minutes_between(mad(2026, 3, 29), mad(2026, 3, 30), madrid) == 1380
    assert add_business_time(mad(2026, 3, 29), 1440, madrid) == mad(2026, 3, 30, 1)


def test_country_none_ignores_holidays():
    cal = BusinessCalendar(name="no-holidays", country=None)
    assert add_business_time(bog(2026, 1, 9, 16), 180, cal) == bog(2026, 1, 12, 9)


def test_next_opening():
    assert next_opening(bog(2026, 3, 7, 10), DEFAULT) == bog(2026, 3, 9, 8)
    assert next_opening(bog(2026, 3, 2, 10), DEFAULT) == bog(2026, 3, 2, 10)
    assert next_opening(bog(2026, 3, 2, 18), DEFAULT) == bog(2026, 3, 3, 8)
    assert next_opening(bog(2026, 1, 9, 18), DEFAULT) == bog(2026, 1, 13, 8)
    assert next_opening(bog(2026, 3, 2, 12, 30), SPLIT) == bog(2026, 3, 2, 14)
    assert next_opening(datetime(2026, 3, 7, tzinfo=UTC), ALWAYS) == bog(2026, 3, 6, 19)
    assert next_opening(datetime(2026, 3, 2, 12, tzinfo=UTC), DEFAULT).tzinfo == BOG


# ----------------------------------------------------------------------------- between


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (bog(2026, 3, 2, 10), bog(2026, 3, 2, 12), 120),
        (bog(2026, 3, 2, 10, 15, 30), bog(2026, 3, 2, 12), 104.5),
        (bog(2026, 3, 6, 17), bog(2026, 3, 9, 9), 120),
        (bog(2026, 3, 9, 9), bog(2026, 3, 6, 17), -120),
        (bog(2026, 3, 2, 6), bog(2026, 3, 2, 20), 600),
        (bog(2026, 3, 2, 10), bog(2026, 3, 2, 10), 0),
        # same closed period
        (bog(2026, 3, 7, 10), bog(2026, 3, 8, 20), 0),
        (bog(2026, 3, 2, 18, 30), bog(2026, 3, 3, 7), 0),
        (bog(2026, 3, 2, 18), bog(2026, 3, 3, 8), 0),
        (bog(2026, 3, 6, 18), bog(2026, 3, 9, 8), 0),
        (bog(2026, 1, 12, 8), bog(2026, 1, 12, 18), 0),  # holiday
        (bog(2026, 4, 1, 18), bog(2026, 4, 6, 8), 0),  # Holy Thursday to Monday
        (bog(2026, 12, 31, 18), bog(2027, 1, 4, 8), 0),  # New Year
        # across holidays and years
        (bog(2026, 1, 9, 16), bog(2026, 1, 13, 9), 180),
        (bog(2026, 12, 31, 17), bog(2027, 1, 4, 9), 120),
        # 30-day span: March 2026 has 21 weekdays, San José (23rd) is a holiday -> 20 days
        (bog(2026, 3, 1), bog(2026, 3, 31), 20 * 600),
        # 2026: 261 weekdays, 19 holidays on weekdays -> 242 working days
        (bog(2026, 1, 1), bog(2027, 1, 1), 242 * 600),
        # other zones
        (datetime(2026, 3, 2, 13, tzinfo=UTC), datetime(2026, 3, 2, 23, tzinfo=UTC), 600),
        (mad(2026, 3, 2, 14), bog(2026, 3, 2, 9), 60),
    ],
)
def test_business_minutes_between_default(a, b, expected):
    assert business_minutes_between(a, b, DEFAULT) == expected


def test_business_time_between_is_exact():
    a = bog(2026, 3, 2, 10, 0, 0, 1)
    b = bog(2026, 3, 3, 8, 0, 0, 2)
    assert business_time_between(a, b, DEFAULT) == timedelta(hours=8, microseconds=1)
    assert business_time_between(b, a, DEFAULT) == -timedelta(hours=8, microseconds=1)
    assert business_minutes_between(bog(2026, 3, 2, 10), bog(2026, 3, 2, 10, 0, 7), DEFAULT) == (
        7 / 60
    )


def test_minutes_per_business_day_default():
    assert minutes_per_business_day(DEFAULT) == 600
    five_days = 5 * minutes_per_business_day(DEFAULT)
    assert add_business_time(bog(2026, 3, 6, 10), five_days, DEFAULT) == bog(2026, 3, 13, 10)


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_time(datetime(2026, 3, 2, 10), 60, DEFAULT),
        lambda: business_minutes_between(datetime(2026, 3, 2, 10), bog(2026, 3, 2, 11), DEFAULT),
        lambda: business_minutes_between(bog(2026, 3, 2, 10), datetime(2026, 3, 2, 11), DEFAULT),
        lambda: business_time_between(datetime(2026, 3, 2), datetime(2026, 3, 3), ALWAYS),
        lambda: DEFAULT.is_open(datetime(2026, 3, 2, 10)),
        lambda: next_opening(datetime(2026, 3, 2, 10), DEFAULT),
        lambda: add_business_time(datetime(2026, 3, 2, 10), 60, ALWAYS),
        lambda: add_business_time(bog(2026, 3, 2, 10), float("nan"), DEFAULT),
        lambda: add_business_time(bog(2026, 3, 2, 10), float("inf"), DEFAULT),
    ],
)
def test_naive_datetimes_and_bad_minutes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_non_datetime_inputs_raise_type_error():
    with pytest.raises(TypeError):
        add_business_time(date(2026, 3, 2), 60, DEFAULT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add_business_time(bog(2026, 3, 2, 10), "60", DEFAULT)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- DST (Madrid)


def test_madrid_calendar_across_spring_forward():
    # Sunday 2026-03-29 02:00 CET -> 03:00 CEST.
    fri = mad(2026, 3, 27, 17)
    assert fri.utcoffset() == timedelta(hours=1)
    mon = add_business_time(fri, 120, MADRID)
    assert mon == mad(2026, 3, 30, 10)
    assert mon.utcoffset() == timedelta(hours=2)
    assert (mon.hour, mon.minute) == (10, 0)
    assert mon == datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert business_minutes_between(fri, mon, MADRID) == 120
    # the lunch break is in wall-clock time on both sides of the change
    assert add_business_time(mad(2026, 3, 27, 13), 120, MADRID) == mad(2026, 3, 27, 16)
    assert add_business_time(mad(2026, 3, 30, 13), 120, MADRID) == mad(2026, 3, 30, 16)
    # a Bogota input is converted: Friday 11:00 Bogota = 17:00 CET
    assert add_business_time(bog(2026, 3, 27, 11), 120, MADRID) == mad(2026, 3, 30, 10)


def test_madrid_calendar_across_fall_back():
    # Sunday 2026-10-25 03:00 CEST -> 02:00 CET.
    fri = mad(2026, 10, 23, 17)
    assert fri.utcoffset() == timedelta(hours=2)
    mon = add_business_time(fri, 120, MADRID)
    assert mon == mad(2026, 10, 26, 10)
    assert mon.utcoffset() == timedelta(hours=1)
    assert business_minutes_between(fri, mon, MADRID) == 120
    assert business_minutes_between(mad(2026, 10, 19), mad(2026, 10, 31), MADRID) == 10 * 480
    assert minutes_per_business_day(MADRID) == 480


def test_dst_days_with_working_hours_over_the_change():
    hours = {6: ((time(0), time(0)),)}  # Sundays 00:00-24:00
    sunday = BusinessCalendar(name="sunday", timezone="Europe/Madrid", country=None, hours=hours)
    assert business_minutes_between(mad(2026, 3, 29), mad(2026, 3, 30), sunday) == 1380
    assert business_minutes_between(mad(2026, 10, 25), mad(2026, 10, 26), sunday) == 1500
    assert business_minutes_between(mad(2026, 3, 22), mad(2026, 3, 23), sunday) == 1440
    # 01:00 CET + 60 minutes = 02:00 CET = 03:00 CEST
    result = add_business_time(mad(2026, 3, 29, 1), 60, sunday)
    assert result.astimezone(UTC) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert (result.hour, result.utcoffset()) == (3, timedelta(hours=2))
    # the repeated hour 02:00-03:00 is worked twice: 01:30 CEST + 120 minutes = 02:30 CET,
    # the second 02:30 of the day (fold=1). Compared in UTC: same-zone == ignores fold.
    result = add_business_time(mad(2026, 10, 25, 1, 30), 120, sunday)
    assert result.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert (result.hour, result.minute, result.fold) == (2, 30, 1)
    assert result.utcoffset() == timedelta(hours=1)

    night = BusinessCalendar(
        name="night", timezone="Europe/Madrid", country=None, hours={6: ((time(1), time(5)),)}
    )
    assert business_minutes_between(mad(2026, 3, 29), mad(2026, 3, 30), night) == 180
    assert business_minutes_between(mad(2026, 10, 25), mad(2026, 10, 26), night) == 300
    # an opening inside the DST gap opens at the jump (03:00 CEST)
    gap = BusinessCalendar(
        name="gap", timezone="Europe/Madrid", country=None, hours={6: ((time(2, 30), time(4)),)}
    )
    assert next_opening(mad(2026, 3, 29), gap) == mad(2026, 3, 29, 3)
    assert business_minutes_between(mad(2026, 3, 29), mad(2026, 3, 30), gap) == 60
    assert business_minutes_between(mad(2026, 3, 22), mad(2026, 3, 23), gap) == 90


def test_calendar_in_a_zone_with_midnight_dst_changes():
    # Chile (America/Santiago) changes at midnight; 7 weekdays 00:00-24:00 must count elapsed time.
    santiago = ZoneInfo("America/Santiago")
    cal = BusinessCalendar(
        name="cl",
        timezone="America/Santiago",
        country=None,
        hours={wd: ((time(0), time(0)),) for wd in range(7)},
    )
    a = datetime(2026, 1, 1, tzinfo=santiago)
    b = datetime(2027, 1, 1, tzinfo=santiago)
    assert business_time_between(a, b, cal) == b.astimezone(UTC) - a.astimezone(UTC)
    assert add_business_time(a, business_minutes_between(a, b, cal), cal) == b
    # Sunday 2026-09-06 has no 00:00-01:00 in Santiago: that day has 23 hours
    sunday = datetime(2026, 9, 6, tzinfo=santiago)
    assert business_minutes_between(sunday, sunday + timedelta(days=1), cal) == 1380


# ----------------------------------------------------------------------------- properties

working_day_starts = st.builds(
    lambda day, seconds: datetime.combine(day, time(8), tzinfo=BOG) + timedelta(seconds=seconds),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)),
    st.integers(min_value=0, max_value=600 * 60 - 1),
)
any_instant = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([BOG, MAD, UTC, ZoneInfo("Asia/Tokyo")]),
)
durations_seconds = st.integers(min_value=0, max_value=25 * 600 * 60)  # up to 25 business days
calendars = st.sampled_from([DEFAULT, SPLIT, MADRID, ALWAYS])


@PROPS
@given(start=working_day_starts, seconds=durations_seconds)
def test_between_inverts_add_for_starts_inside_working_hours(start, seconds):
    assume(DEFAULT.is_working_day(start.date()))
    assert DEFAULT.is_open(start)
    minutes = seconds / 60
    end = add_business_time(start, minutes, DEFAULT)
    assert business_minutes_between(start, end, DEFAULT) == minutes
    assert business_time_between(start, end, DEFAULT) == timedelta(seconds=seconds)
    assert end.tzinfo == BOG


@PROPS
@given(start=any_instant, seconds=durations_seconds, cal=calendars)
def test_add_returns_the_earliest_instant_reaching_the_duration(start, seconds, cal):
    end = add_business_time(start, seconds / 60, cal)
    assert utc(end) >= utc(start)
    assert business_time_between(start, end, cal) == timedelta(seconds=seconds)
    if seconds:
        just_before = utc(end) - timedelta(microseconds=1)
        assert business_time_between(start, just_before, cal) < timedelta(seconds=seconds)
        # the last microsecond counted was a working one
        assert cal.is_open(just_before)
    else:
        assert utc(end) == utc(start)


@PROPS
@given(start=any_instant, seconds=durations_seconds, cal=calendars)
def test_negative_add_inverts_between(start, seconds, cal):
    begin = add_business_time(start, -seconds / 60, cal)
    assert utc(begin) <= utc(start)
    assert business_time_between(begin, start, cal) == timedelta(seconds=seconds)
    if seconds:
        assert cal.is_open(begin)


@PROPS
@given(start=any_instant, first=durations_seconds, second=durations_seconds, cal=calendars)
def test_add_composes(start, first, second, cal):
    once = add_business_time(start, (first + second) / 60, cal)
    twice = add_business_time(add_business_time(start, first / 60, cal), second / 60, cal)
    assert utc(once) == utc(twice)


@PROPS
@given(a=any_instant, b=any_instant, c=any_instant, cal=calendars)
def test_between_is_additive_and_antisymmetric(a, b, c, cal):
    ab = business_time_between(a, b, cal)
    assert business_time_between(b, a, cal) == -ab
    assert ab + business_time_between(b, c, cal) == business_time_between(a, c, cal)
    assert ab >= timedelta(0) if a <= b else ab <= timedelta(0)
    assert abs(ab) <= abs(utc(b) - utc(a))  # aware same-zone subtraction is wall-clock


@PROPS
@given(a=any_instant, hours=st.integers(min_value=0, max_value=200))
def test_between_inside_one_closed_period_is_zero(a, hours):
    assume(not DEFAULT.is_open(a))
    opening = next_opening(a, DEFAULT)
    b = min(utc(a) + timedelta(hours=hours), utc(opening))
    assert business_minutes_between(a, b, DEFAULT) == 0
    assert business_minutes_between(b, a, DEFAULT) == 0


@PROPS
@given(start=any_instant, minutes=st.floats(min_value=0, max_value=30000, allow_nan=False))
def test_fractional_minutes_are_exact_to_the_microsecond(start, minutes):
    end = add_business_time(start, minutes, DEFAULT)
    expected = timedelta(minutes=minutes)
    assert business_time_between(start, end, DEFAULT) == expected
    assert business_minutes_between(start, end, DEFAULT) == pytest.approx(minutes, abs=1e-6)
