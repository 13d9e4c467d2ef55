"""The two-task approval process driven through the REST API on PostgreSQL and SQLite."""

from __future__ import annotations

from app.engine.serializer import dump_state, load_state
from app.persistence.models import ProcessDefinition, ProcessInstance
from app.services.instances import process_spec


def _round_trip(ctx, instance_id):
    """The stored state deserializes and serializes back to the same workflow."""
    with ctx.unit() as session:
        instance = session.get(ProcessInstance, instance_id)
        definition = session.get(ProcessDefinition, instance.definition_id)
        pspec = process_spec(ctx, definition)
        workflow = load_state(instance.state, pspec)
        again = load_state(dump_state(workflow), pspec)
        assert [t.state for t in again.get_tasks()] == [t.state for t in workflow.get_tasks()]
        assert again.last_task.data == workflow.last_task.data if workflow.last_task else True


def test_approval_lifecycle(as_user, approval, ctx):
    ana, bruno = as_user["ana"], as_user["bruno"]
    started = ana.post("/api/instances", json={"process_key": "approval", "business_key": "B-1",
                                               "variables": {"customer": "acme"}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()
    assert instance["status"] == "active" and instance["version"] == 1
    assert [t["name"] for t in instance["tasks"]] == ["enter_amount"]
    _round_trip(ctx, instance["id"])

    inbox = ana.get("/api/tasks").get_json()
    assert inbox["total"] == 1
    task = inbox["items"][0]
    assert task["candidate_groups"] == ["sales"] and task["priority"] == 2
    assert task["form"]["schema"]["properties"]["amount"]["type"] == "integer"

    bad = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": "ten"}})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "data.amount"

    done = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 21}})
    assert done.status_code == 200, done.get_json()
    _round_trip(ctx, instance["id"])
    again = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 21}})
    assert again.status_code == 409

    assert bruno.get("/api/tasks").get_json()["items"][0]["name"] == "approve"
    assert ana.get("/api/tasks").get_json()["total"] == 0
    approve = bruno.get("/api/tasks").get_json()["items"][0]
    finished = bruno.post(f"/api/tasks/{approve['id']}/complete", json={"data": {"approved": True}})
    assert finished.get_json()["instance"]["status"] == "completed"
    _round_trip(ctx, instance["id"])

    detail = ana.get(f"/api/instances/{instance['id']}").get_json()
    assert detail["variables"]["total"] == 42 and detail["variables"]["approved"] is True
    assert detail["ended_at"] is not None and detail["tasks"] == []
    history = ana.get(f"/api/instances/{instance['id']}/history").get_json()["items"]
    kinds = [e["kind"] for e in history]
    assert kinds == ["instance_started", "task_completed", "task_completed", "instance_completed"]
