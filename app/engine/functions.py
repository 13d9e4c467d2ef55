"""Functions BPMN scripts and expressions may call, besides the sandbox's safe builtins.

They are trusted code: they run outside the sandbox's restrictions and outside its time limit
(which is only checked between lines of sandboxed code), so each one checks its arguments and
returns plain JSON-safe values. Amounts are finite and at most ten years of minutes, and the
calendar days a computation walks are bounded (MAX_WALK_DAYS), so every call returns within
about half a second or raises ValueError. A calendar argument is either the name of one of the
service's calendars or a calendar snapshot (the dict of `calendar_definition`), so a case keeps
computing with the calendar it started with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from app.domain.business_time import (
    add_business_time,
    business_minutes_between,
    minutes_per_business_day,
)
from app.domain.calendar import BusinessCalendar

MAX_MINUTES = 3653 * 24 * 60  # ten years of minutes
MAX_SPAN = timedelta(days=3653)  # business_minutes: at most ten years apart
MAX_WALK_DAYS = 50 * 366  # calendar days add_business_time may walk (ten years of minutes
#                           on a Mon-Fri 10-hour calendar take ~34 years)


def script_functions(calendars: Mapping[str, BusinessCalendar]) -> dict:
    """The functions of the script environment, bound to the service's named calendars."""

    def calendar(ref) -> BusinessCalendar:
        if isinstance(ref, dict):
            return BusinessCalendar.from_dict(ref)
        if ref not in calendars:
            raise ValueError(f"unknown calendar {ref!r}; known: {', '.join(sorted(calendars))}")
        return calendars[ref]

    def calendar_definition(name: str = "default") -> dict:
        """A snapshot of a named calendar, to store with a case."""
        return calendar(name).to_dict()

    def business_due(start, minutes, calendar_ref="default") -> str:
        """`start` plus `minutes` of business time, as an ISO datetime."""
        cal, amount = calendar(calendar_ref), _minutes(minutes)
        _check_walk(cal, amount)
        return add_business_time(_instant(start), amount, cal).isoformat()

    def business_minutes(start, end, calendar_ref="default") -> float:
        """Business minutes from `start` to `end` (negative if `end` is earlier)."""
        first, last = _instant(start), _instant(end)
        if abs(last - first) > MAX_SPAN:
            raise ValueError(f"{start!r} and {end!r} are more than ten years apart")
        return business_minutes_between(first, last, calendar(calendar_ref))

    def business_day_minutes(calendar_ref="default") -> float:
        """Minutes of business time in one working day of the calendar."""
        return minutes_per_business_day(calendar(calendar_ref))

    def sla_threshold(started, target_minutes, share, paused_minutes, calendar_ref="default"):
        """When `share` of an SLA target is used up, given the business minutes paused so far."""
        minutes = _number(share) * _minutes(target_minutes) + _minutes(paused_minutes)
        return business_due(started, minutes, calendar_ref)

    def now_iso() -> str:
        """The current time in UTC, as an ISO datetime."""
        return datetime.now(UTC).isoformat()

    return {"calendar_definition": calendar_definition, "business_due": business_due,
            "business_minutes": business_minutes, "business_day_minutes": business_day_minutes,
            "sla_threshold": sla_threshold, "now_iso": now_iso}


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a number is expected, got {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _minutes(value) -> float:
    """A finite number of minutes of at most ten years, either way."""
    minutes = _number(value)
    if abs(minutes) > MAX_MINUTES:
        raise ValueError(f"{value!r} minutes is more than ten years")
    return minutes


def _check_walk(cal: BusinessCalendar, minutes: float) -> None:
    """Refuse amounts a sparse calendar would take more than MAX_WALK_DAYS to reach."""
    if cal.always_open or not minutes:
        return
    weekly = sum(_clock_minutes(end, end=True) - _clock_minutes(begin, end=False)
                 for intervals in cal.hours.values() for begin, end in intervals)
    per_day = weekly / 7 * 0.85  # margin for holidays and closed days
    if abs(minutes) / per_day > MAX_WALK_DAYS:
        raise ValueError(f"{minutes} business minutes of calendar {cal.name!r} is more than "
                         f"{MAX_WALK_DAYS // 366} years away")


def _clock_minutes(moment: time, end: bool) -> float:
    if end and moment == time(0):  # an interval ending at midnight runs to 24:00
        return 1440.0
    return moment.hour * 60 + moment.minute + moment.second / 60


def _instant(value) -> datetime:
    if not isinstance(value, datetime | str):
        raise ValueError(f"an ISO datetime is expected, got {type(value).__name__}")
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def default_calendars() -> dict[str, BusinessCalendar]:
    """The built-in calendars, used when no calendars file is configured."""
    return {"default": BusinessCalendar.default(), "7x24": BusinessCalendar.always()}


def load_calendars(path) -> dict[str, BusinessCalendar]:
    """Named calendars from a JSON file ({"calendars": [BusinessCalendar.to_dict(), ...]}),
    on top of the built-in ones; a malformed file raises ValueError naming the calendar."""
    calendars = default_calendars()
    if path is None or not path.is_file():
        return calendars
    for index, item in enumerate(json.loads(path.read_text(encoding="utf-8"))["calendars"]):
        try:
            calendar = BusinessCalendar.from_dict(item)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: calendars[{index}]: {exc}") from None
        calendars[calendar.name] = calendar
    return calendars
