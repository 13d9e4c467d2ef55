"""Timer values are checked before SpiffWorkflow parses them, and a failing timer becomes an
incident on its own task, through real BPMN."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hostile import run_isolated, start, timer_process
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as library_timer
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from app.engine import Engine, compile_files, introspect
from app.engine import parser as flow_parser
from app.engine.sandbox import SandboxedScriptEngine
from app.engine.serializer import dump_state, load_spec, load_state

_BOUNDARY = {"timeCycle": True}
_ELEMENT = {"timeCycle": "b"}


@pytest.fixture
def engine():
    return Engine(script_timeout=1.0)


def _start(engine, kind: str, value, expression: str = "when"):
    xml = timer_process("timed", kind, expression, boundary=_BOUNDARY.get(kind, False))
    return start(engine, xml, "timed", {"when": value})


INVALID = [
    ("timeDuration", "garbage", "is not an ISO 8601 duration"),
    ("timeDuration", "P9999Y", "longer than ten years"),
    ("timeDuration", "P10Y1D", "longer than ten years"),
    ("timeDuration", "PT87700H", "longer than ten years"),
    ("timeDuration", "-PT1H", "negative duration"),
    ("timeDuration", "2030-01-01T00:00:00Z", "is not an ISO 8601 duration"),
    ("timeDuration", 5, "must be an ISO 8601 string"),
    ("timeDuration", None, "must be an ISO 8601 string"),
    ("timeDate", "garbage", "is not an ISO 8601 date-time"),
    ("timeDate", "PT1H", "must be an ISO 8601 date-time"),
    ("timeDate", "9999-12-31T23:59:59-05:00", "out of range"),
    ("timeCycle", "garbage", "repeating interval"),
    ("timeCycle", "R/PT1M", "needs a repetition count"),
    ("timeCycle", "R5000/PT1H", "needs a repetition count of at most 1000"),
    ("timeCycle", "R3/PT0S", "positive interval"),
    ("timeCycle", "R3/P99999Y", "longer than ten years"),
    ("timeCycle", "R3/2030-01-01T00:00:00Z/2031-01-01T00:00:00Z", "exactly one duration"),
]


@pytest.mark.parametrize(("kind", "value", "words"), INVALID)
def test_invalid_timer_values_become_incidents_on_the_timer(engine, kind, value, words):
    snap, pspec = _start(engine, kind, value)
    (error,) = snap.errors
    assert error.element_id == _ELEMENT.get(kind, "t") and not error.sandbox_violation
    assert words in error.message and f"({kind})" in error.message, error.message
    assert snap.timers == ()
    load_state(snap.state, pspec)  # the instance stays storable


def test_a_duration_that_would_spin_for_hours_is_refused():
    """SpiffWorkflow adds up the days of 12 billion months for "P999999999Y"."""
    models = {"spin": (timer_process("spin", "timeDuration", "when"), {"when": "P999999999Y"})}
    results = run_isolated(models, timeout=60)
    assert "spin" in results, "the engine hung on the timer"
    ((element, message, violation),) = results["spin"]["errors"]
    assert element == "t" and "longer than ten years" in message and not violation
    assert results["spin"]["seconds"] < 5


@pytest.mark.parametrize(("kind", "value", "due_in"), [
    ("timeDuration", "PT1H", timedelta(hours=1)),
    ("timeDuration", "P10Y", timedelta(days=3652)),
    ("timeDuration", "P1Y2M3DT4H5M6S", timedelta(days=365 + 61 + 3, hours=4, minutes=5)),
    ("timeCycle", "R3/PT1H", timedelta(hours=1)),
])
def test_valid_timers_wait(engine, kind, value, due_in):
    before = datetime.now(UTC)
    snap, _ = _start(engine, kind, value)
    assert snap.errors == ()
    (timer,) = snap.timers
    assert before + due_in - timedelta(days=3) <= timer.due_at <= datetime.now(UTC) + due_in + \
        timedelta(days=3)


@pytest.mark.parametrize("value", ["2030-01-31T09:00:00Z", "2030-01-31T04:00:00-05:00"])
def test_dates_are_stored_in_utc(engine, value):
    snap, _ = _start(engine, "timeDate", value)
    (timer,) = snap.timers
    assert timer.due_at == datetime(2030, 1, 31, 9, tzinfo=UTC)


def test_a_date_expression_may_give_a_datetime(engine):
    snap, _ = _start(engine, "timeDate", None,
                     expression="datetime(2030, 1, 31, 9, tzinfo=timezone.utc)")
    (timer,) = snap.timers
    assert timer.due_at == datetime(2030, 1, 31, 9, tzinfo=UTC)


def test_a_past_date_fires_at_once(engine):
    snap, _ = _start(engine, "timeDate", "2000-01-01T00:00:00Z")
    assert snap.errors == () and snap.timers == ()
    assert [t.element_id for t in snap.user_tasks] == ["review"]


def test_checked_timers_round_trip_under_the_library_type_names(engine):
    xml = timer_process("timed", "timeDuration", '"PT1H"')
    (compiled,) = compile_files({"timed.bpmn": xml})
    spec_json = json.loads(compiled.spec_json)
    assert spec_json["spec"]["task_specs"]["t"]["event_definition"]["typename"] == \
        "DurationTimerEventDefinition"
    definition = load_spec(compiled.spec_json).spec.task_specs["t"].event_definition
    assert type(definition) is flow_parser.DurationTimerEventDefinition


@pytest.mark.parametrize(("kind", "checked"), [
    ("timeDuration", "DurationTimerEventDefinition"), ("timeDate", "TimeDateEventDefinition"),
    ("timeCycle", "CycleTimerEventDefinition")])
def test_specs_stored_by_the_library_restore_as_checked_timers(kind, checked):
    """Definitions deployed before the checked timers existed get them when restored."""
    parser = SpiffBpmnParser()
    xml = timer_process("timed", kind, "when", boundary=_BOUNDARY.get(kind, False))
    parser.add_bpmn_xml(etree.fromstring(xml), filename="timed.bpmn")
    spec = parser.get_spec("timed")
    library = BpmnWorkflowSerializer.configure(dict(SPIFF_CONFIG))
    stored = json.dumps({"spec": library.convert(spec), "subprocess_specs": {}})
    restored = load_spec(stored).spec.task_specs[_ELEMENT.get(kind, "t")].event_definition
    assert type(restored) is getattr(flow_parser, checked)


# --- a failing timer is an incident on its task (not a crash) ------------------------------


def _library_workflow(kind: str, value) -> BpmnWorkflow:
    """A workflow parsed by the plain SpiffBpmnParser: the library's unchecked timers."""
    parser = SpiffBpmnParser()
    xml = timer_process("timed", kind, "when", boundary=_BOUNDARY.get(kind, False))
    parser.add_bpmn_xml(etree.fromstring(xml), filename="timed.bpmn")
    workflow = BpmnWorkflow(parser.get_spec("timed"), script_engine=SandboxedScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data["when"] = value
    return workflow


@pytest.mark.parametrize(("kind", "value", "words"), [
    ("timeDuration", "garbage", "Invalid duration"),
    ("timeDuration", "P9999Y", "out of range"),
    ("timeDate", "garbage", "Invalid isoformat"),
    ("timeCycle", "garbage", "invalid literal"),
])
def test_an_error_raised_by_a_library_timer_is_recorded_on_it(kind, value, words):
    workflow = _library_workflow(kind, value)
    assert isinstance(_timer(workflow, kind).task_spec.event_definition,
                      library_timer.TimerEventDefinition)
    introspect.run_steps(workflow)  # no task was put in ERROR by the library: found anyway
    (failed,) = workflow.get_tasks(state=TaskState.ERROR)
    assert failed is _timer(workflow, kind)
    assert words in failed.internal_data[introspect.ERROR_KEY]["message"]


def test_an_error_raised_while_refreshing_a_waiting_timer_is_recorded_on_it():
    workflow = _library_workflow("timeDate", "2030-01-31T09:00:00Z")
    introspect.run_steps(workflow)
    waiting = _timer(workflow, "timeDate")
    assert waiting.has_state(TaskState.WAITING)
    waiting.internal_data["event_value"] = "garbage"  # e.g. a state written by an older version
    introspect.run_steps(workflow)
    assert waiting.has_state(TaskState.ERROR)
    assert "Invalid isoformat" in waiting.internal_data[introspect.ERROR_KEY]["message"]
    assert waiting.id not in workflow.event_manager.tasks  # not refreshed again
    introspect.run_steps(workflow)
    assert waiting.has_state(TaskState.ERROR)


def test_a_broken_waiting_timer_of_a_stored_instance_becomes_an_incident(engine):
    snap, pspec = _start(engine, "timeDate", "2030-01-31T09:00:00Z")
    workflow = load_state(snap.state, pspec)
    _timer(workflow, "timeDate").internal_data["event_value"] = "garbage"
    again = engine.fire_timers(pspec, dump_state(workflow))
    (error,) = again.errors
    assert error.element_id == "t" and "is not an ISO 8601 date-time" in error.message


def test_an_error_no_task_can_be_blamed_for_is_raised():
    workflow = _library_workflow("timeDuration", "PT1H")
    with pytest.raises(RuntimeError, match="nothing to blame"):
        introspect.record_error(workflow, RuntimeError("nothing to blame"))


def _timer(workflow, kind: str):
    (task,) = workflow.get_tasks(spec_name=_ELEMENT.get(kind, "t"))
    return task


def test_retrying_a_timer_incident_with_a_still_bad_value_is_a_new_error_not_a_crash():
    """A retry resets the failed timer; a value that is still invalid fails it again."""
    source = (Path(__file__).resolve().parents[1] / "data" / "bpmn" / "waits.bpmn").read_bytes()
    source = source.replace(b'"PT2H"', b"cooling")
    (compiled,) = compile_files({"waits.bpmn": source})
    engine = Engine()
    pspec = engine.process_spec(99, lambda: compiled.spec_json)
    snap = engine.start(pspec, {"case_id": "C", "cooling": "P999999999Y"})
    snap = engine.deliver_message(pspec, snap.state, "customer_replied", {"case_id": "C"})
    (error,) = snap.errors
    again = engine.retry_task(pspec, snap.state, error.spiff_task_id)
    assert [e.element_id for e in again.errors] == [error.element_id]
