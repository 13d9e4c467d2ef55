"""The fields of a BusinessCalendar: parsing and normalising working hours, country, closed
days and time zone, formatting them back, public holidays, and reading a wall-clock time
as a UTC instant (semantics in the docstring of app.domain.calendar)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Interval = tuple[time, time]

_MIDNIGHT = time(0)
_DAY = timedelta(days=1)
_SECONDS_PER_DAY = 86400


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


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)
