"""Drawing when things happen: registration instants over business days and the business
minutes each tier takes (pure: a seeded random.Random in, plain values out)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from .mix import (
    ANSWER_MINUTES,
    CALENDAR,
    CONFIRM_DELAY,
    FIRST_CONTACT,
    HOURS,
    INCIDENT,
    INFO_REQUEST,
    MISROUTE,
    N1_DELAY,
    N2_DELAY,
    N3_DELAY,
    WEEKDAYS,
)


def delay(rng: random.Random, spec: tuple, scale: float = 1.0) -> float:
    median, sigma, low, high = spec
    return min(high * scale, max(low, median * scale * rng.lognormvariate(0, sigma)))


def n2_pace(target_hours: float) -> float:
    """The N2 delay factor giving a product a mean resolution of about `target_hours`."""
    def mean(spec):
        return spec[0] * math.exp(spec[1] ** 2 / 2)
    base = (mean(N1_DELAY) + INFO_REQUEST * (sum(ANSWER_MINUTES) / 2 + mean(N1_DELAY))
            + INCIDENT * (mean(N3_DELAY) + mean(CONFIRM_DELAY)))
    return max(0.2, (target_hours * 60 - base) / (mean(N2_DELAY) * (1 - FIRST_CONTACT + MISROUTE)))


def registration_times(rng, start: datetime, end: datetime, months: int, per_month: int):
    """`per_month` instants in each of `months` equal slices of [start, end): business days
    (Mondays busiest), Bogota hours weighted by HOURS (a few before 8:00 or after 18:00)."""
    span, times = (end - start) / months, []
    for month in range(months):
        low, high = start + month * span, start + (month + 1) * span
        first = low.astimezone(CALENDAR.zone).date()
        days = [d for d in (first + timedelta(days=n) for n in range((high - low).days + 2))
                if CALENDAR.is_working_day(d)]
        weights, drawn = [WEEKDAYS[d.weekday()] for d in days], []
        while len(drawn) < per_month:
            day = rng.choices(days, weights=weights)[0]
            hour = rng.choices(range(24), weights=HOURS)[0]
            local = datetime(day.year, day.month, day.day, hour, tzinfo=CALENDAR.zone)
            at = (local + timedelta(seconds=rng.randrange(3600))).astimezone(UTC)
            if low <= at < high:
                drawn.append(at)
        times += sorted(drawn)
    return times
