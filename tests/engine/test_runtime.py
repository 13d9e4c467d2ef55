"""The engine seam on real .bpmn files, with a serializer round-trip after every step."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from app.engine import Engine, compile_files
from app.engine.serializer import dump_state, load_state

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "bpmn"


def _compile(*paths: Path):
    return {p.process_key: p
            for p in compile_files({path.name: path.read_bytes() for path in paths})}


@pytest.fixture
def engine():
    return Engine(script_timeout=1.0)


def _round_trip(engine, pspec, snap):
    """Restore the state, dump it again: same tasks, same states, same data."""
    workflow = load_state(snap.state, pspec)
    again = load_state(dump_state(workflow), pspec)
    assert [(str(t.id), t.state, t.data) for t in again.get_tasks()] == \
        [(str(t.id), t.state, t.data) for t in workflow.get_tasks()]
    assert engine.snapshot(pspec, snap.state).user_tasks == snap.user_tasks
    return snap


def test_state_holds_no_spec(engine):
    compiled = _compile(ROOT / "bpmn" / "approval" / "approval.bpmn")["approval"]
    pspec = engine.process_spec(1, lambda: compiled.spec_json)
    snap = engine.start(pspec, {})
    state = json.loads(zlib.decompress(snap.state))
    assert "spec" not in state and "subprocess_specs" not in state
    assert engine.process_spec(1, lambda: pytest.fail("spec rebuilt")) is pspec


def test_approval_paths(engine):
    compiled = _compile(ROOT / "bpmn" / "approval" / "approval.bpmn")["approval"]
    pspec = engine.process_spec(1, lambda: compiled.spec_json)
    for amount, expected in ((4, {"total": 8}), (0, {})):
        snap = _round_trip(engine, pspec, engine.start(pspec, {"who": "x"}))
        (task,) = snap.user_tasks
        assert (task.element_id, task.candidate_groups, task.priority) == (
            "enter_amount", ("sales",), 2)
        snap = _round_trip(engine, pspec, engine.complete_user_task(
            pspec, snap.state, task.spiff_task_id, {"amount": amount}))
        if amount == 0:
            assert snap.completed and snap.user_tasks == ()
            continue
        assert snap.variables["total"] == expected["total"]
        snap = _round_trip(engine, pspec, engine.complete_user_task(
            pspec, snap.state, snap.user_tasks[0].spiff_task_id, {"approved": True}))
        assert snap.completed


def test_message_then_timer(engine):
    compiled = _compile(DATA / "waits.bpmn")["waits"]
    pspec = engine.process_spec(2, lambda: compiled.spec_json)
    snap = _round_trip(engine, pspec, engine.start(pspec, {"case_id": "C-1"}))
    assert [(m.name, m.correlation) for m in snap.messages] == [
        ("customer_replied", {"case_id": "C-1"})]
    snap = _round_trip(engine, pspec, engine.deliver_message(
        pspec, snap.state, "customer_replied", {"case_id": "C-1", "answer": 42}))
    assert snap.messages == () and len(snap.timers) == 1
    assert snap.variables["answer"] == 42
    again = engine.fire_timers(pspec, snap.state)
    assert again.timers == snap.timers and again.user_tasks == ()


def test_service_call_is_reported_once_and_completed_with_its_result(engine):
    compiled = _compile(DATA / "notify.bpmn")["notify"]
    pspec = engine.process_spec(3, lambda: compiled.spec_json)
    snap = _round_trip(engine, pspec,
                       engine.start(pspec, {"hook_url": "http://h", "customer": "c"}))
    (call,) = snap.service_calls
    assert (call.operation, call.params) == ("http_request", {
        "url": "http://h", "method": "POST", "json": {"customer": "c"}})
    assert engine.snapshot(pspec, snap.state).service_calls == ()
    done = _round_trip(engine, pspec, engine.complete_service_task(
        pspec, snap.state, call.spiff_task_id, {"status": 200}))
    assert done.variables["hook"] == {"status": 200}
    assert [t.element_id for t in done.user_tasks] == ["review"]


def test_dmn_and_call_activity(engine):
    folder = DATA / "pricing"
    compiled = _compile(*sorted(folder.iterdir()))["pricing"]
    pspec = engine.process_spec(4, lambda: compiled.spec_json)
    snap = _round_trip(engine, pspec, engine.start(pspec, {"segment": "corporativo"}))
    assert snap.variables["discount"] == 25
    assert [t.element_id for t in snap.user_tasks] == ["confirm_price"]
    done = _round_trip(engine, pspec, engine.complete_user_task(
        pspec, snap.state, snap.user_tasks[0].spiff_task_id, {}))
    assert done.completed


def test_script_error_is_reported_not_raised(engine):
    compiled = _compile(DATA / "scripted.bpmn")["scripted"]
    pspec = engine.process_spec(5, lambda: compiled.spec_json)
    snap = _round_trip(engine, pspec, engine.start(pspec, {"parts": 0, "subject": 1,
                                                             "attribute": "real"}))
    (error,) = snap.errors
    assert error.element_id == "compute" and not error.sandbox_violation
    escape = engine.start(pspec, {"parts": 1, "subject": 1, "attribute": "__class__"})
    assert escape.errors[0].sandbox_violation and "kind" not in escape.variables
