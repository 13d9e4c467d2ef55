"""SLA clocks: consumed share, pauses, state, due dates and the ladder, computed by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.domain.calendar import BusinessCalendar
from app.domain.sla import LadderStep, Pause, SlaClock, SlaState, clock_from, summary

BOG = ZoneInfo("America/Bogota")
CAL = BusinessCalendar.default()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=BOG)  # Mon 19 .. Fri 23 Oct 2026


def test_consumed_share_and_state_without_pauses():
    clock = SlaClock(at(19, 9), 600, CAL)  # one business day
    assert clock.consumed(at(19, 13)) == 240
    assert clock.state(at(19, 13)) is SlaState.ON_TRACK
    assert clock.share(at(20, 8, 30)) == pytest.approx(570 / 600)
    assert clock.state(at(20, 8, 30)) is SlaState.AT_RISK
    assert clock.due_at(at(19, 9)) == at(20, 9)
    assert clock.state(at(20, 9, 1)) is SlaState.BREACHED
    assert clock.remaining(at(20, 10)) == -60


def test_a_pause_stops_the_clock_and_moves_the_due_date():
    pause = Pause(at(19, 11), at(19, 15), "waiting_customer")
    clock = SlaClock(at(19, 9), 600, CAL, (pause,))
    assert clock.paused_minutes(at(19, 16)) == 240
    assert clock.consumed(at(19, 16)) == 120 + 60
    assert clock.due_at(at(19, 16)) == at(20, 13)
    assert clock.state(at(19, 12)) is SlaState.ON_TRACK


def test_an_open_pause_reports_paused_and_keeps_moving_the_due_date():
    clock = SlaClock(at(19, 9), 600, CAL, (Pause(at(19, 10), None, "waiting_customer"),))
    assert clock.state(at(19, 17)) is SlaState.PAUSED
    assert clock.consumed(at(19, 17)) == 60
    assert clock.due_at(at(19, 17)) == at(20, 16)  # 540 minutes left from 17:00 + pause so far


def test_stopped_clock_is_frozen_and_says_whether_it_was_met():
    clock = SlaClock(at(19, 9), 600, CAL, stopped_at=at(20, 8, 30))
    assert clock.consumed(at(23, 17)) == 570 and clock.met() is True
    late = SlaClock(at(19, 9), 600, CAL, stopped_at=at(20, 12))
    assert late.met() is False and SlaClock(at(19, 9), 600, CAL).met() is None


def test_ladder_thresholds():
    clock = SlaClock(at(19, 9), 600, CAL)
    assert clock.at_share(LadderStep.WARNING.share, at(19, 9)) == at(19, 16, 30)
    assert clock.at_share(LadderStep.CRITICAL.share, at(19, 9)) == at(20, 14)
    assert LadderStep.NONE.next() is LadderStep.WARNING
    assert LadderStep.CRITICAL.next() is None


def test_changing_the_calendar_later_does_not_change_a_stored_clock():
    stored = BusinessCalendar.default().to_dict()
    clock = clock_from(at(19, 9), 600, stored, [], at(19, 19))
    assert clock.consumed(at(19, 19)) == 540
    always = clock_from(at(19, 9), 600, BusinessCalendar.always().to_dict(), [], at(19, 19))
    assert always.consumed(at(19, 19)) == 600
    assert clock.met() is True and always.met() is True


def test_summary_block():
    clock = clock_from(at(19, 9), 600, None,
                       [{"from": at(19, 10).isoformat(), "to": None, "reason": "x"}], None)
    block = summary(clock, at(19, 12))
    assert block["state"] == "paused" and block["remaining_business_minutes"] == 540
