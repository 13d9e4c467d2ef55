"""Named business calendars are data (bpmn/calendars.json), seen by scripts and the SLA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.calendar import BusinessCalendar
from app.engine import Engine
from app.engine.functions import load_calendars

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_file_defines_the_default_and_7x24_calendars():
    calendars = load_calendars(REPO / "bpmn" / "calendars.json")
    assert calendars["default"] == BusinessCalendar.default()
    assert calendars["7x24"].always_open


def test_an_extra_closed_day_moves_due_dates(tmp_path):
    default = BusinessCalendar.default().to_dict()
    default["closed_days"] = ["2026-10-20"]
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps({"calendars": [default]}))
    engine = Engine(calendars=load_calendars(path))
    due = engine.script_engine.environment.globals["business_due"]
    assert due("2026-10-19T09:00:00-05:00", 600, "default") == "2026-10-21T09:00:00-05:00"


def test_a_malformed_calendar_is_refused_with_its_position(tmp_path):
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps({"calendars": [{"name": "x", "timezone": "Mars/Olympus"}]}))
    with pytest.raises(ValueError, match=r"calendars\[0\]"):
        load_calendars(path)
