"""SLA figures of support cases: the `sla` block, the SLA-risk order, the ladder projection."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case as when
from sqlalchemy import or_, select, update

from app.domain.calendar import business_minutes_between
from app.domain.sla import SlaClock, business_clock, clock_from, risk_base, summary
from app.persistence.crm import CaseInstance, SupportCase
from app.persistence.models import Task, utcnow

OPEN_STATUSES = ("open", "waiting_customer")


class SlaColumns(NamedTuple):
    """Where a table keeps the figures of the SLA-risk order."""

    calendar: object
    minutes: object
    base: object
    frozen_share: object


CASE_SLA = SlaColumns(SupportCase.calendar, SupportCase.sla_minutes, SupportCase.sla_base,
                      SupportCase.sla_frozen_share)
TASK_SLA = SlaColumns(Task.sla_calendar, Task.sla_minutes, Task.sla_base, Task.sla_frozen_share)


class CaseClock(NamedTuple):
    """What a case's SLA clock is made of (what `clock_of` reads of a case)."""

    sla_minutes: int | None
    sla_pauses: list | None
    status: str
    sla_paused_since: datetime | None
    resolved_at: datetime | None
    created_at: datetime
    calendar_def: dict | None


def clock_of(case: SupportCase | CaseClock) -> SlaClock | None:
    """The case's SLA clock, from what the case stored (None before its target is known)."""
    if not case.sla_minutes:
        return None
    pauses = list(case.sla_pauses or [])
    if case.status == "waiting_customer" and case.sla_paused_since:
        pauses.append({"from": case.sla_paused_since.isoformat(), "to": None,
                       "reason": "waiting_customer"})
    stopped = case.resolved_at if case.status in ("resolved", "closed") else None
    return clock_from(case.created_at, case.sla_minutes, case.calendar_def, pauses, stopped)


def business_minutes(case: SupportCase, start: datetime, end: datetime) -> float:
    """Business minutes between two instants in the case's own calendar."""
    calendar = clock_from(start, 1, case.calendar_def, (), None).calendar
    return round(business_minutes_between(start, end, calendar), 2)


def block(case: SupportCase | CaseClock, now: datetime | None = None) -> dict | None:
    """`sla: {due_at, remaining_business_minutes, state, share}` of a case."""
    clock = clock_of(case)
    return summary(clock, now or utcnow()) if clock else None


def refresh(case: SupportCase, now: datetime | None = None) -> None:
    """Recompute the stored figures that order inboxes by risk and freeze closed cases."""
    clock = clock_of(case)
    if clock is None:
        return
    now = now or utcnow()
    case.sla_base = risk_base(clock, now)
    frozen = clock.is_paused(now) or clock.stopped_at is not None
    case.sla_frozen_share = round(clock.share(now), 6) if frozen else None
    if clock.stopped_at is not None:
        case.sla_consumed_minutes = round(clock.consumed(now), 2)
        case.sla_met = clock.met()
    else:
        case.sla_consumed_minutes = case.sla_met = None


def risk_order(clocks: dict, columns: SlaColumns = CASE_SLA):
    """SQL expression: the share of its SLA a case has consumed (higher is worse), from the
    case's columns or from the copy its tasks keep (`columns=TASK_SLA`). NULL without a
    target: a frozen share as it was frozen, else (business clock of the case's calendar
    now - base) / target. `clocks`: calendar name -> its business clock now, as a number
    (`clocks_at`) or a bind parameter; "default" is used for unknown calendars."""
    running = when(*[(columns.calendar == name, clock) for name, clock in clocks.items()],
                   else_=clocks["default"])
    share = (running - columns.base) / columns.minutes
    return when((columns.frozen_share.is_not(None), columns.frozen_share), else_=share)


def clocks_at(calendars: dict, now: datetime | None = None) -> dict[str, float]:
    """Each calendar's business clock at `now` (the numbers `risk_order` compares with)."""
    now = now or utcnow()
    return {name: business_clock(calendar, now) for name, calendar in calendars.items()}


def link_instance(session, case: SupportCase, instance_id: int) -> None:
    """Record that the instance works for the case, and copy the case's SLA figures onto the
    tasks of its instances (called after every step of the case's processes, once the case
    is up to date: new tasks get them, and so do older ones when the figures changed)."""
    if session.get(CaseInstance, instance_id) is None:
        session.add(CaseInstance(instance_id=instance_id, case_id=case.id))
    stamp_tasks(session, case)


def stamp_tasks(session, case: SupportCase) -> None:
    """One UPDATE of the case's tasks whose copy differs from the case (usually none)."""
    values = [(task, getattr(case, column.key))
              for task, column in zip(TASK_SLA, CASE_SLA, strict=True)]
    instances = select(CaseInstance.instance_id).where(CaseInstance.case_id == case.id)
    session.execute(
        update(Task).where(Task.instance_id.in_(instances),
                           or_(*[task.is_distinct_from(value) for task, value in values]))
        .values({task.key: value for task, value in values})
        .execution_options(synchronize_session="fetch"))
