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
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_HOURS",
    "BusinessCalendar",
    "add_business_time",
    "business_minutes_between",
    "business_time_between",
    "minutes_per_business_day",
    "next_opening",
]

Interval = tuple[time, time]

_MIDNIGHT = time(0)
_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
_SECONDS_PER_DAY = 86400
# A calendar closed for this many consecutive days is considered to have no working time left.
_MAX_CLOSED_STREAK = 3660
_DAY_CACHE_LIMIT = 20000

DEFAULT_HOURS: Mapping[int, tuple[Interval, ...]] = MappingProxyType(
    {weekday: ((time(8), time(18)),) for weekday in range(5)}
)


# --------------------------------------------------------------------------- holidays


@lru_cache(maxsize=1)
def _supported_countries() -> frozenset[str]:
    return frozenset(holidays.list_supported_countries())


@lru_cache(maxsize=1024)
def _holiday_dates(country: str, year: int) -> frozenset[date]:
    """Public holidays of ``country`` in ``year``, cached per (country, year)."""
    return frozenset(holidays.country_holidays(country, years=year).keys())


# --------------------------------------------------------------------------- normalisation


def _zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone must be an IANA zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def _parse_time(value: Any, *, end: bool) -> time:
    if isinstance(value, str):
        if end and value in ("24:00", "24:00:00"):
            return _MIDNIGHT
        try:
            value = time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"invalid time of day {value!r}") from exc
    if not isinstance(value, time):
        raise ValueError(f"working hours need datetime.time values or 'HH:MM', got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"working hours are wall-clock times without tzinfo, got {value!r}")
    return value


def _offset(value: time, *, end: bool) -> int:
    """Microseconds since local midnight; an end at 00:00 means 24:00."""
    if end and value == _MIDNIGHT:
        return _SECONDS_PER_DAY * 1_000_000
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _weekday(key: Any) -> int:
    if isinstance(key, bool):
        raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {key!r}")
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    if not isinstance(key, int) or not 0 <= key <= 6:
        raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {key!r}")
    return key


def _normalize_hours(raw: Any) -> Mapping[int, tuple[Interval, ...]]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"hours must map weekday -> intervals, got {type(raw).__name__}")
    out: dict[int, tuple[Interval, ...]] = {}
    for key, intervals in raw.items():
        weekday = _weekday(key)
        if weekday in out:
            raise ValueError(f"weekday {weekday} given twice in hours")
        if isinstance(intervals, str | bytes) or not isinstance(intervals, Iterable):
            raise ValueError(f"hours[{weekday}] must be a sequence of (start, end) pairs")
        parsed: list[Interval] = []
        for pair in intervals:
            if isinstance(pair, str | bytes) or not isinstance(pair, Iterable):
                raise ValueError(f"hours[{weekday}]: expected a (start, end) pair, got {pair!r}")
            items = tuple(pair)
            if len(items) != 2:
                raise ValueError(f"hours[{weekday}]: expected a (start, end) pair, got {pair!r}")
            start = _parse_time(items[0], end=False)
            stop = _parse_time(items[1], end=True)
            if _offset(start, end=False) >= _offset(stop, end=True):
                raise ValueError(f"hours[{weekday}]: interval {start}-{stop} is empty")
            parsed.append((start, stop))
        parsed.sort(key=lambda iv: _offset(iv[0], end=False))
        for (_, prev_end), (next_start, _) in zip(parsed, parsed[1:], strict=False):
            if _offset(prev_end, end=True) > _offset(next_start, end=False):
                raise ValueError(f"hours[{weekday}]: intervals overlap")
        if parsed:
            out[weekday] = tuple(parsed)
    return MappingProxyType(dict(sorted(out.items())))


def _normalize_country(country: Any) -> str | None:
    if country is None:
        return None
    if not isinstance(country, str) or country not in _supported_countries():
        raise ValueError(f"country {country!r} is not supported by the holidays package")
    return country


def _normalize_closed_days(raw: Any) -> frozenset[date]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
        raise ValueError("closed_days must be a collection of dates")
    days: set[date] = set()
    for item in raw:
        if isinstance(item, str):
            try:
                item = date.fromisoformat(item)
            except ValueError as exc:
                raise ValueError(f"invalid closed day {item!r}") from exc
        if isinstance(item, datetime) or not isinstance(item, date):
            raise ValueError(f"closed days must be dates, got {item!r}")
        days.add(item)
    return frozenset(days)


def _format_time(value: time, *, end: bool) -> str:
    if end and value == _MIDNIGHT:
        return "24:00"
    if value.second == 0 and value.microsecond == 0:
        return value.strftime("%H:%M")
    return value.isoformat()


def _first_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """First UTC instant at which the local clock of ``tz`` shows ``day`` ``wall`` (or later)."""
    local = datetime.combine(day, wall, tzinfo=tz)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant  # exists; fold=0 is the first occurrence of an ambiguous time
    # In a DST gap: fold=1 reads it with the offset after the jump (an instant before the
    # jump), fold=0 with the offset before it (an instant after). Find the jump, to the second.
    lo = math.floor(local.replace(fold=1).astimezone(UTC).timestamp())
    hi = math.ceil(instant.timestamp())
    after = datetime.fromtimestamp(hi, UTC).astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


# --------------------------------------------------------------------------- calendar


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


# --------------------------------------------------------------------------- arithmetic


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


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
