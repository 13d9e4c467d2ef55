"""Business-time arithmetic on a BusinessCalendar: adding business minutes to an instant
and measuring the business time between two (semantics in the docstring of
app.domain.calendar, which re-exports these functions)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .calendar_fields import _DAY, _offset, _utc

if TYPE_CHECKING:
    from .calendar import BusinessCalendar

_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
# A calendar closed for this many consecutive days is considered to have no working time left.
_MAX_CLOSED_STREAK = 3660


def _as_timedelta(minutes: float) -> timedelta:
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise TypeError(f"minutes must be a number, got {minutes!r}")
    if isinstance(minutes, float) and not math.isfinite(minutes):
        raise ValueError(f"minutes must be finite, got {minutes!r}")
    return timedelta(minutes=minutes)


def _forward(calendar: BusinessCalendar, t: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals after UTC instant ``t``, clipped to start at ``t`` at the earliest."""
    day = t.astimezone(calendar.zone).date() - _DAY
    closed_streak = 0
    while True:
        intervals = calendar._intervals(day)
        if intervals:
            closed_streak = 0
            for start, stop in intervals:
                if stop > t:
                    yield (start if start > t else t), stop
        else:
            closed_streak += 1
            if closed_streak > _MAX_CLOSED_STREAK:
                raise ValueError(f"calendar {calendar.name!r} has no working time after {t}")
        day += _DAY


def _backward(calendar: BusinessCalendar, t: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals before UTC instant ``t``, latest first, clipped to end at ``t``."""
    day = t.astimezone(calendar.zone).date() + _DAY
    closed_streak = 0
    while True:
        intervals = calendar._intervals(day)
        if intervals:
            closed_streak = 0
            for start, stop in reversed(intervals):
                if start < t:
                    yield start, (stop if stop < t else t)
        else:
            closed_streak += 1
            if closed_streak > _MAX_CLOSED_STREAK:
                raise ValueError(f"calendar {calendar.name!r} has no working time before {t}")
        day -= _DAY


def add_business_time(start: datetime, minutes: float, calendar: BusinessCalendar) -> datetime:
    """Earliest instant at which ``minutes`` business minutes have elapsed since ``start``.

    See the module docstring: outside hours counting begins at the next opening, 0 minutes
    returns ``start``, landing on a closing time stays there, negative minutes go backwards.
    The result is in the calendar's zone.
    """
    t = _utc(start, "start")
    remaining = _as_timedelta(minutes)
    tz = calendar.zone
    if calendar.always_open or not remaining:
        return (t + remaining).astimezone(tz)
    if remaining > _ZERO:
        for begin, end in _forward(calendar, t):
            span = end - begin
            if remaining <= span:
                return (begin + remaining).astimezone(tz)
            remaining -= span
    else:
        remaining = -remaining
        for begin, end in _backward(calendar, t):
            span = end - begin
            if remaining <= span:
                return (end - remaining).astimezone(tz)
            remaining -= span
    raise AssertionError("unreachable")  # pragma: no cover - the walks are infinite


def business_time_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time from ``a`` to ``b`` as an exact ``timedelta``; negative if ``b < a``."""
    ta, tb = _utc(a, "a"), _utc(b, "b")
    if tb < ta:
        return -_between(tb, ta, calendar)
    return _between(ta, tb, calendar)


def _between(ta: datetime, tb: datetime, calendar: BusinessCalendar) -> timedelta:
    if calendar.always_open:
        return tb - ta
    tz = calendar.zone
    day = ta.astimezone(tz).date() - _DAY
    last = tb.astimezone(tz).date()
    total = _ZERO
    while day <= last:
        for start, stop in calendar._intervals(day):
            if stop <= ta:
                continue
            if start >= tb:
                break
            total += (stop if stop < tb else tb) - (start if start > ta else ta)
        day += _DAY
    return total


def business_minutes_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> float:
    """Business minutes from ``a`` to ``b`` (fractional for seconds); negative if ``b < a``."""
    return business_time_between(a, b, calendar) / _MINUTE


def next_opening(at: datetime, calendar: BusinessCalendar) -> datetime:
    """``at`` itself if the calendar is open then, else the next opening (calendar's zone)."""
    t = _utc(at, "at")
    if calendar.always_open:
        return t.astimezone(calendar.zone)
    for begin, _ in _forward(calendar, t):
        return begin.astimezone(calendar.zone)
    raise AssertionError("unreachable")  # pragma: no cover


def minutes_per_business_day(calendar: BusinessCalendar) -> float:
    """Minutes of one standard working day: "N business days" = N times this.

    The standard day is the most common daily total among weekdays with hours (ties go to
    the longer one), measured in wall-clock time: 600 for Mon-Fri 08-18 (even with a shorter
    Saturday), 480 for 08-12 + 14-18, 1440 for 7x24 calendars.
    """
    if calendar.always_open:
        return 1440.0
    totals = Counter(
        sum(_offset(stop, end=True) - _offset(start, end=False) for start, stop in intervals)
        for intervals in calendar.hours.values()
    )
    standard = max(totals.items(), key=lambda item: (item[1], item[0]))[0]
    return standard / 60_000_000
