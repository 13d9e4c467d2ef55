"""SLA clocks in business time: target, pauses, consumed share, state and the escalation ladder.

A clock is a value built from what a case stored when it started (its target, its calendar
snapshot, its pauses), so later changes of calendars or targets never change its figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

from .business_time import add_business_time, business_minutes_between
from .calendar import BusinessCalendar


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


class LadderStep(StrEnum):
    """Steps of the escalation ladder, in order, with the share of the target that fires them."""

    NONE = "none"
    WARNING = "warning"
    BREACHED = "breached"
    CRITICAL = "critical"

    @property
    def share(self) -> float:
        return {"none": 0.0, "warning": 0.75, "breached": 1.0, "critical": 1.5}[self.value]

    def next(self) -> LadderStep | None:
        steps = list(LadderStep)
        index = steps.index(self)
        return steps[index + 1] if index + 1 < len(steps) else None


AT_RISK_SHARE = LadderStep.WARNING.share


@dataclass(frozen=True)
class Pause:
    start: datetime
    end: datetime | None
    reason: str

    @classmethod
    def from_dict(cls, data: dict) -> Pause:
        end = data.get("to")
        return cls(datetime.fromisoformat(data["from"]),
                   datetime.fromisoformat(end) if end else None, data.get("reason", ""))


@dataclass(frozen=True)
class SlaClock:
    started_at: datetime
    target_minutes: float
    calendar: BusinessCalendar
    pauses: tuple[Pause, ...] = ()
    stopped_at: datetime | None = None

    def _until(self, now: datetime) -> datetime:
        return min(now, self.stopped_at) if self.stopped_at else now

    def paused_minutes(self, now: datetime) -> float:
        until = self._until(now)
        return sum(self._pause_minutes(p, until) for p in self.pauses)

    def _pause_minutes(self, pause: Pause, until: datetime) -> float:
        end = min(pause.end or until, until)
        if end <= pause.start:
            return 0.0
        return business_minutes_between(pause.start, end, self.calendar)

    def is_paused(self, now: datetime) -> bool:
        return self.stopped_at is None and any(
            p.end is None and p.start <= now for p in self.pauses)

    def consumed(self, now: datetime, paused: float | None = None) -> float:
        """Business minutes of the target used up at `now` (pauses excluded; `paused`:
        their minutes, when the caller has them)."""
        until = self._until(now)
        elapsed = business_minutes_between(self.started_at, until, self.calendar)
        return max(0.0, elapsed - (self.paused_minutes(now) if paused is None else paused))

    def remaining(self, now: datetime) -> float:
        return self.target_minutes - self.consumed(now)

    def share(self, now: datetime) -> float:
        return self.consumed(now) / self.target_minutes if self.target_minutes else 0.0

    def due_at(self, now: datetime) -> datetime:
        """When the target runs out, as things stand at `now` (an open pause keeps moving it)."""
        return self.at_share(1.0, now)

    def at_share(self, share: float, now: datetime, paused: float | None = None) -> datetime:
        paused = self.paused_minutes(now) if paused is None else paused
        return add_business_time(self.started_at, share * self.target_minutes + paused,
                                 self.calendar)

    def state(self, now: datetime, share: float | None = None) -> SlaState:
        if self.is_paused(now):
            return SlaState.PAUSED
        share = self.share(now) if share is None else share
        if share >= 1.0:  # the target is used up (the ladder's breach step fires then too)
            return SlaState.BREACHED
        return SlaState.AT_RISK if share >= AT_RISK_SHARE else SlaState.ON_TRACK

    def met(self) -> bool | None:
        """Whether a stopped clock stayed within its target (None while it runs)."""
        if self.stopped_at is None:
            return None
        return self.consumed(self.stopped_at) <= self.target_minutes


def clock_from(started_at: datetime, target_minutes: float, calendar: dict | None,
               pauses: Iterable[dict] | None, stopped_at: datetime | None) -> SlaClock:
    """A clock from the plain values a case stores."""
    cal = _calendar(json.dumps(calendar, sort_keys=True) if calendar else None)
    return SlaClock(started_at, float(target_minutes), cal,
                    tuple(Pause.from_dict(p) for p in pauses or ()), stopped_at)


@lru_cache(maxsize=64)
def _calendar(snapshot: str | None) -> BusinessCalendar:
    """The calendar of a stored snapshot (JSON), built once: its memo of working days then
    serves every clock of every case that shares the snapshot."""
    return BusinessCalendar.from_dict(json.loads(snapshot)) if snapshot \
        else BusinessCalendar.default()


def summary(clock: SlaClock, now: datetime) -> dict:
    """The `sla` block of a case or task: due_at, remaining_business_minutes, state (the
    paused and consumed minutes computed once)."""
    paused = clock.paused_minutes(now)
    consumed = clock.consumed(now, paused)
    share = consumed / clock.target_minutes if clock.target_minutes else 0.0
    return {"due_at": clock.at_share(1.0, now, paused).astimezone(UTC),
            "remaining_business_minutes": round(clock.target_minutes - consumed, 1),
            "state": clock.state(now, share).value, "share": round(share, 4)}


CLOCK_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def business_clock(calendar: BusinessCalendar, at: datetime) -> float:
    """Business minutes of `calendar` from a fixed epoch to `at`: a clock that only runs in
    business time, so "share of SLA consumed" is (clock(now) - base) / target."""
    day_start = datetime.combine(at.astimezone(calendar.zone).date(), datetime.min.time(),
                                 calendar.zone)
    return _clock_at(calendar, day_start) + business_minutes_between(day_start, at, calendar)


@lru_cache(maxsize=4096)
def _clock_at(calendar: BusinessCalendar, day_start: datetime) -> float:
    return business_minutes_between(CLOCK_EPOCH, day_start, calendar)


def risk_base(clock: SlaClock, now: datetime) -> float:
    """The business-clock minute from which a running clock counts (pauses shift it)."""
    return business_clock(clock.calendar, clock.started_at) + clock.paused_minutes(now)
