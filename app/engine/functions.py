"""Functions BPMN scripts and expressions may call, besides the sandbox's safe builtins.

They are trusted code: they run outside the sandbox's restrictions, so each one checks its
arguments and returns plain JSON-safe values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from app.domain.calendar import BusinessCalendar, add_business_time, minutes_per_business_day


def script_functions(calendars: Mapping[str, BusinessCalendar]) -> dict:
    """The functions of the script environment, bound to the service's named calendars."""

    def calendar(name: str) -> BusinessCalendar:
        if name not in calendars:
            raise ValueError(f"unknown calendar {name!r}; known: {', '.join(sorted(calendars))}")
        return calendars[name]

    def business_due(start, minutes, calendar_name: str = "default") -> str:
        """`start` plus `minutes` of business time of the calendar, as an ISO datetime."""
        return add_business_time(_instant(start), float(minutes), calendar(calendar_name)).isoformat()

    def business_day_minutes(calendar_name: str = "default") -> float:
        """Minutes of business time in one working day of the calendar."""
        return minutes_per_business_day(calendar(calendar_name))

    def now_iso() -> str:
        """The current time in UTC, as an ISO datetime."""
        return datetime.now(UTC).isoformat()

    return {"business_due": business_due, "business_day_minutes": business_day_minutes,
            "now_iso": now_iso}


def _instant(value) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def default_calendars() -> dict[str, BusinessCalendar]:
    return {"default": BusinessCalendar.default(), "7x24": BusinessCalendar.always()}
