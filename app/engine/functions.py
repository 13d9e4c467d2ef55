"""Functions BPMN scripts and expressions may call, besides the sandbox's safe builtins.

They are trusted code: they run outside the sandbox's restrictions, so each one checks its
arguments and returns plain JSON-safe values. A calendar argument is either the name of one
of the service's calendars or a calendar snapshot (the dict of `calendar_definition`), so a
case keeps computing with the calendar it started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from app.domain.calendar import (
    BusinessCalendar,
    add_business_time,
    business_minutes_between,
    minutes_per_business_day,
)


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
        due = add_business_time(_instant(start), float(minutes), calendar(calendar_ref))
        return due.isoformat()

    def business_minutes(start, end, calendar_ref="default") -> float:
        """Business minutes from `start` to `end` (negative if `end` is earlier)."""
        return business_minutes_between(_instant(start), _instant(end), calendar(calendar_ref))

    def business_day_minutes(calendar_ref="default") -> float:
        """Minutes of business time in one working day of the calendar."""
        return minutes_per_business_day(calendar(calendar_ref))

    def sla_threshold(started, target_minutes, share, paused_minutes, calendar_ref="default"):
        """When `share` of an SLA target is used up, given the business minutes paused so far."""
        minutes = float(share) * float(target_minutes) + float(paused_minutes)
        return business_due(started, minutes, calendar_ref)

    def now_iso() -> str:
        """The current time in UTC, as an ISO datetime."""
        return datetime.now(UTC).isoformat()

    return {"calendar_definition": calendar_definition, "business_due": business_due,
            "business_minutes": business_minutes, "business_day_minutes": business_day_minutes,
            "sla_threshold": sla_threshold, "now_iso": now_iso}


def _instant(value) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def default_calendars() -> dict[str, BusinessCalendar]:
    return {"default": BusinessCalendar.default(), "7x24": BusinessCalendar.always()}
