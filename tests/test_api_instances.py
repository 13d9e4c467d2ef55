"""Instance lifecycle rules: suspend, resume, cancel, bad input, concurrency."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, text

from app.persistence import instance_rows, task_rows
from app.persistence.models import Event, ProcessInstance, Task, utcnow


def _start(client, **body):
    response = client.post("/api/instances", json={"process_key": "approval", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_suspended_instance_accepts_no_completion_until_resumed(as_user, approval):
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana)
    task = instance["tasks"][0]
    assert olga.post(f"/api/instances/{instance['id']}/suspend").get_json()["status"] == "suspended"
    assert olga.post(f"/api/instances/{instance['id']}/suspend").status_code == 409
    blocked = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 1}})
    assert blocked.status_code == 409
    assert olga.post(f"/api/instances/{instance['id']}/resume").get_json()["status"] == "active"
    done = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 1}})
    assert done.status_code == 200


def test_cancel_closes_tasks_and_is_final(as_user, approval):
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana)
    cancelled = olga.post(f"/api/instances/{instance['id']}/cancel").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"]
    assert ana.get("/api/tasks").get_json()["total"] == 0
    assert olga.post(f"/api/instances/{instance['id']}/cancel").status_code == 409
    assert olga.post(f"/api/instances/{instance['id']}/resume").status_code == 409


def test_list_and_filter_instances(as_user, approval):
    ana = as_user["ana"]
    first = _start(ana, business_key="K-1")
    _start(ana, business_key="K-2")
    listed = ana.get("/api/instances?process_key=approval&per_page=1&page=2").get_json()
    assert listed["total"] == 2 and listed["items"][0]["id"] == first["id"]
    by_key = ana.get("/api/instances?business_key=K-1").get_json()
    assert [i["id"] for i in by_key["items"]] == [first["id"]]
    assert ana.get("/api/instances?status=completed").get_json()["total"] == 0
    assert ana.get("/api/instances?status=bogus").status_code == 422


def test_bad_input_is_a_clear_4xx_and_writes_nothing(as_user, approval, ctx):
    ana = as_user["ana"]
    unknown = ana.post("/api/instances", json={"process_key": "nope"})
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"] == [{"field": "process_key",
                                             "message": "unknown process key"}]
    missing = ana.post("/api/instances", json={"business_key": "x"})
    assert missing.status_code == 422
    assert missing.get_json()["errors"][0]["field"] == "process_key"
    bad_var = ana.post("/api/instances", json={"process_key": "approval",
                                               "variables": {"__class__": 1}})
    assert bad_var.status_code == 422
    assert bad_var.get_json()["errors"][0]["field"] == "variables.__class__"
    not_json = ana.post("/api/instances", data="{", content_type="application/json")
    assert not_json.status_code in (400, 422)
    assert ana.get("/api/instances/999999").status_code == 404
    with ctx.unit() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
        assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_concurrent_completion_gives_one_200_and_one_409(as_user, approval, ctx, app):
    instance = _start(as_user["carla"])
    task = instance["tasks"][0]
    barrier, codes = threading.Barrier(2), []

    def complete():
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/tasks/{task['id']}/complete",
                               json={"data": {"amount": 5}}, headers=as_user["carla"].headers)
        codes.append(response.status_code)

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409]
    with ctx.unit() as session:
        names = session.scalars(select(Task.name).where(Task.instance_id == instance["id"])
                                .order_by(Task.id)).all()
        assert names == ["enter_amount", "approve"]


def test_completion_that_waited_for_the_lock_reads_what_the_holder_committed(
        as_user, approval, ctx, app, database_url):
    """The lock and the tasks are read in one statement; when another transaction committed
    while this one waited (PostgreSQL), the tasks are read again, so the completion sees its
    task completed and answers 409 instead of completing it twice."""
    task = _start(as_user["carla"])["tasks"][0]
    locked, release, codes = threading.Event(), threading.Event(), []

    def holder():
        with ctx.unit() as session:
            instance = instance_rows.lock(session, task["instance_id"])
            task_rows.complete(session, task_rows.get(session, task["id"]), "ana", {}, utcnow())
            instance_rows.save(session, instance)
            locked.set()
            release.wait(10)

    def completer():
        response = app.test_client().post(f"/api/tasks/{task['id']}/complete", json={
            "data": {"amount": 5}}, headers=as_user["carla"].headers)
        codes.append(response.status_code)

    first = threading.Thread(target=holder)
    first.start()
    locked.wait(10)
    second = threading.Thread(target=completer)
    second.start()
    if database_url.startswith("postgresql"):
        assert _waits_for_lock(ctx), "the completion did not wait for the instance lock"
    release.set()
    first.join()
    second.join()
    assert codes == [409]
    with ctx.unit() as session:
        assert session.scalars(select(Task.name).where(
            Task.instance_id == task["instance_id"])).all() == ["enter_amount"]


def _waits_for_lock(ctx) -> bool:
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                 "AND query LIKE 'WITH locked AS%'")
    for _ in range(100):
        with ctx.read() as session:
            if session.connection().execute(query).scalar():
                return True
        time.sleep(0.05)
    return False


def test_healthz_and_openapi(app, ctx):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"database": "ok", "redis": "embedded"}
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/tasks/{task_id}/complete" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_completion_data_names_are_checked_like_variables(as_user, approval, ctx):
    task = _start(as_user["ana"])["tasks"][0]
    response = as_user["root"].post(f"/api/tasks/{task['id']}/complete", json={
        "data": {"__builtins__": 1, "_getattr_": 2, "a b": 3, "amount": 4}})
    assert response.status_code == 422
    body = response.get_json()
    assert {e["field"] for e in body["errors"]} == {"data.__builtins__", "data._getattr_",
                                                    "data.a b"}
    assert as_user["ana"].get(f"/api/tasks/{task['id']}").get_json()["status"] == "open"
    with ctx.unit() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1  # started only


def test_version_in_lists_and_transitions(as_user, approval):
    olga = as_user["olga"]
    instance = _start(as_user["ana"])
    version = approval["version"]
    assert [i["version"] for i in olga.get("/api/instances").get_json()["items"]] == [version]
    for action in ("suspend", "resume", "cancel"):
        response = olga.post(f"/api/instances/{instance['id']}/{action}")
        assert response.status_code == 200 and response.get_json()["version"] == version


def test_steering_refusals_name_the_action(as_user, approval):
    instance = _start(as_user["ana"])
    for action in ("suspend", "resume", "cancel"):
        response = as_user["ana"].post(f"/api/instances/{instance['id']}/{action}")
        assert response.status_code == 403
        assert response.get_json()["message"] == f"not allowed to {action} instances"
