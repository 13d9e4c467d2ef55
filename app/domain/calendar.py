"""Business calendars: working hours, public holidays and closed days in one time zone.

SLAs of support cases are counted in business time. A :class:`BusinessCalendar` is an
immutable value (stored with a case as a plain dict, see :meth:`BusinessCalendar.to_dict`),
so changing the calendar used for new cases never rewrites figures already computed.

Semantics, in one place:

* Working intervals are wall-clock times per weekday in the calendar's zone, half-open
  ``[opening, closing)``: the calendar is open at 08:00:00 and closed at 18:00:00. An interval
  ending at ``time(0)`` ("24:00" in dicts) runs to midnight at the end of that day.
* A wall-clock time is read as the first instant at which the local clock shows it: in a DST
  gap (e.g. 02:30 on a spring-forward night) that is the instant of the jump, and an ambiguous
  time (fall-back night) is its first occurrence. Hours in a DST gap are thus never counted and
  a repeated hour inside a working interval is counted twice (it really is worked twice).
* A day is closed when its weekday has no hours, when it is a public holiday of ``country``
  (from the ``holidays`` package, which applies Colombia's Emiliani law) or when it is listed
  in ``closed_days``.
* ``always_open`` calendars (7x24) count elapsed time; hours, holidays and closed days do not
  apply to them (they are normalised to empty).
* :func:`add_business_time` returns the *earliest* instant ``t >= start`` such that
  ``business_minutes_between(start, t) == minutes``. Hence: a start outside working hours
  begins counting at the next opening; adding 0 minutes returns ``start`` itself (converted
  to the calendar's zone; use :func:`next_opening` for "when does the clock start"); a result
  landing exactly at a closing time stays at the closing time (Mon 10:00 + 8 h = Mon 18:00).
  Negative minutes count backwards symmetrically (landing at an opening stays there).
* Inputs must be timezone-aware datetimes (``ValueError`` otherwise); returned datetimes are
  aware, in the calendar's zone (``zoneinfo.ZoneInfo``). Arithmetic is done on ``timedelta``
  values in UTC, exact to the microsecond; minutes may be fractional.

The value is defined here; its field parsing lives in `calendar_fields` and the arithmetic
in `business_time` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from .business_time import (
    add_business_time,
    business_minutes_between,
    business_time_between,
    minutes_per_business_day,
    next_opening,
)
from .calendar_fields import (
    _DAY,
    _MIDNIGHT,
    Interval,
    _first_instant,
    _format_time,
    _holiday_dates,
    _normalize_closed_days,
    _normalize_country,
    _normalize_hours,
    _utc,
    _zone,
)

__all__ = [
    "DEFAULT_HOURS",
    "BusinessCalendar",
    "add_business_time",
    "business_minutes_between",
    "business_time_between",
    "minutes_per_business_day",
    "next_opening",
]

_DAY_CACHE_LIMIT = 20000

DEFAULT_HOURS: Mapping[int, tuple[Interval, ...]] = MappingProxyType(
    {weekday: ((time(8), time(18)),) for weekday in range(5)}
)


def _default_hours() -> Mapping[int, tuple[Interval, ...]]:
    return DEFAULT_HOURS


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours, holidays and closed days in one IANA time zone. Immutable.

    ``hours`` maps weekday (0 = Monday) to sorted, non-overlapping wall-clock intervals, e.g.
    ``{0: ((time(8), time(12)), (time(14), time(18))), ...}`` for a split shift; weekdays that
    are absent are closed. Inputs are normalised: hours become a read-only mapping, times may
    be given as "HH:MM" strings ("24:00" allowed as an end), ``closed_days`` may be any
    collection of dates or ISO strings.
    """

    name: str = "default"
    timezone: str = "America/Bogota"
    hours: Mapping[int, tuple[Interval, ...]] = field(default_factory=_default_hours)
    country: str | None = "CO"
    closed_days: frozenset[date] = frozenset()
    always_open: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"calendar name must be a non-empty string, got {self.name!r}")
        tz = _zone(self.timezone)
        if not isinstance(self.always_open, bool):
            raise ValueError(f"always_open must be a bool, got {self.always_open!r}")
        if self.always_open:
            hours: Mapping[int, tuple[Interval, ...]] = MappingProxyType({})
            country: str | None = None
            closed: frozenset[date] = frozenset()
        else:
            hours = _normalize_hours(self.hours)
            if not hours:
                raise ValueError("a calendar that is not always_open needs working hours")
            country = _normalize_country(self.country)
            closed = _normalize_closed_days(self.closed_days)
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "closed_days", closed)
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_days", {})  # memo: local date -> UTC working intervals
        key = (self.name, self.timezone, tuple(hours.items()), country, closed, self.always_open)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle/copy rebuild through __init__ (mappingproxy is not picklable; fresh memo)
        fields_ = (self.name, self.timezone, dict(self.hours), self.country, self.closed_days)
        return (type(self), (*fields_, self.always_open))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def default(cls) -> BusinessCalendar:
        """Monday to Friday 08:00-18:00 America/Bogota, closed on Colombian public holidays."""
        return cls()

    @classmethod
    def always(cls, name: str = "7x24", timezone: str = "America/Bogota") -> BusinessCalendar:
        """Open at every instant (7x24): business time equals elapsed time."""
        return cls(name=name, timezone=timezone, always_open=True)

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain dict; :meth:`from_dict` rebuilds an equal calendar."""
        return {
            "name": self.name,
            "timezone": self.timezone,
            "hours": {
                str(weekday): [
                    [_format_time(start, end=False), _format_time(stop, end=True)]
                    for start, stop in intervals
                ]
                for weekday, intervals in self.hours.items()
            },
            "country": self.country,
            "closed_days": [day.isoformat() for day in sorted(self.closed_days)],
            "always_open": self.always_open,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Inverse of :meth:`to_dict`. Missing keys take the defaults; unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a calendar dict is expected, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown calendar keys: {sorted(unknown)}")
        return cls(**data)

    # ------------------------------------------------------------------ queries

    @property
    def zone(self) -> ZoneInfo:
        return self._tz  # type: ignore[attr-defined]

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` (a local date) has working hours and is no holiday or closed day."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"is_working_day takes a date, got {day!r}")
        if self.always_open:
            return True
        if day.weekday() not in self.hours or day in self.closed_days:
            return False
        return self.country is None or day not in _holiday_dates(self.country, day.year)

    def is_open(self, at: datetime) -> bool:
        """True if ``at`` (aware) falls inside a working interval (openings in, closings out)."""
        t = _utc(at, "at")
        if self.always_open:
            return True
        day = t.astimezone(self.zone).date()
        for d in (day - _DAY, day):
            for start, stop in self._intervals(d):
                if start <= t < stop:
                    return True
        return False

    def _intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Working intervals of local date ``day`` as sorted, disjoint UTC instants."""
        days: dict[date, tuple[tuple[datetime, datetime], ...]] = self._days  # type: ignore[attr-defined]
        cached = days.get(day)
        if cached is not None:
            return cached
        result: list[tuple[datetime, datetime]] = []
        if self.is_working_day(day):
            tz = self.zone
            for start, stop in self.hours[day.weekday()]:
                begin = _first_instant(day, start, tz)
                end = (
                    _first_instant(day + _DAY, _MIDNIGHT, tz)
                    if stop == _MIDNIGHT
                    else _first_instant(day, stop, tz)
                )
                if end > begin:
                    result.append((begin, end))
        if len(days) >= _DAY_CACHE_LIMIT:
            days.clear()
        frozen = tuple(result)
        days[day] = frozen
        return frozen
