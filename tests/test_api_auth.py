"""Who may do what, through the real API."""

from __future__ import annotations

import pytest


def _start(client, key="approval"):
    response = client.post("/api/instances", json={"process_key": key})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_requests_without_a_valid_token_are_401(as_user, app):
    client = app.test_client()
    assert client.get("/api/tasks").status_code == 401
    response = client.get("/api/tasks", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]


def test_agent_of_another_group_cannot_see_claim_or_complete(as_user, approval):
    ana, bruno = as_user["ana"], as_user["bruno"]
    task = _start(ana)["tasks"][0]
    assert bruno.get("/api/tasks").get_json() == {"items": [], "total": 0}
    assert bruno.get(f"/api/tasks/{task['id']}").status_code == 403
    assert bruno.post(f"/api/tasks/{task['id']}/claim").status_code == 403
    response = bruno.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 1}})
    assert response.status_code == 403
    assert response.get_json()["code"] == 403
    assert ana.get(f"/api/tasks/{task['id']}").get_json()["status"] == "open"


def test_claimed_task_belongs_to_the_claimer(as_user, approval):
    ana, carla = as_user["ana"], as_user["carla"]
    task = _start(ana)["tasks"][0]
    claimed = ana.post(f"/api/tasks/{task['id']}/claim")
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "ana"
    assert carla.post(f"/api/tasks/{task['id']}/claim").status_code == 409
    denied = carla.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 1}})
    assert denied.status_code == 403
    assert ana.get("/api/tasks?mine=true").get_json()["total"] == 1
    assert carla.get("/api/tasks?mine=true").get_json()["total"] == 0
    assert ana.post(f"/api/tasks/{task['id']}/unclaim").get_json()["assignee"] is None
    assert carla.post(f"/api/tasks/{task['id']}/claim").status_code == 200


def test_operator_assigns_and_the_assignee_completes(as_user, approval):
    ana, olga, bruno = as_user["ana"], as_user["olga"], as_user["bruno"]
    task = _start(ana)["tasks"][0]
    assert ana.post(f"/api/tasks/{task['id']}/assign",
                    json={"username": "bruno"}).status_code == 403
    assigned = olga.post(f"/api/tasks/{task['id']}/assign", json={"username": "bruno"})
    assert assigned.get_json()["assignee"] == "bruno"
    assert olga.post(f"/api/tasks/{task['id']}/assign",
                     json={"username": "ghost"}).status_code == 404
    assert bruno.get("/api/tasks").get_json()["total"] == 1
    done = bruno.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 3}})
    assert done.status_code == 200
    assert olga.post(f"/api/tasks/{task['id']}/complete", json={"data": {}}).status_code == 409


@pytest.mark.parametrize("user,allowed", [
    ("ana", False), ("olga", False), ("diego", True), ("root", True)])
def test_only_designers_and_admins_deploy(as_user, user, allowed):
    from conftest import DATA
    as_user["diego"]  # users exist
    response = _deploy_as(as_user[user], DATA / "bpmn" / "lead.bpmn")
    assert (response.status_code == 201) is allowed
    if not allowed:
        assert response.status_code == 403


def _deploy_as(client, path):
    with open(path, "rb") as handle:
        return client.post("/api/definitions", data={"files": [(handle, path.name)]},
                           content_type="multipart/form-data")


@pytest.mark.parametrize("user,allowed", [
    ("ana", True), ("olga", True), ("root", True), ("diego", False)])
def test_agents_operators_and_admins_start_instances(as_user, approval, user, allowed):
    response = as_user[user].post("/api/instances", json={"process_key": "approval"})
    assert response.status_code == (201 if allowed else 403)


@pytest.mark.parametrize("action", ["suspend", "cancel"])
def test_only_operators_and_admins_steer_instances(as_user, approval, action):
    instance = _start(as_user["ana"])
    assert as_user["ana"].post(f"/api/instances/{instance['id']}/{action}").status_code == 403
    assert as_user["diego"].post(f"/api/instances/{instance['id']}/{action}").status_code == 403
    assert as_user["olga"].post(f"/api/instances/{instance['id']}/{action}").status_code == 200
    history = as_user["olga"].get(f"/api/instances/{instance['id']}/history").get_json()["items"]
    assert history[-1]["actor"] == "olga"


def _complete(client, task_id, data):
    response = client.post(f"/api/tasks/{task_id}/complete", json={"data": data})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _reads(client, instance_id) -> bool:
    detail = client.get(f"/api/instances/{instance_id}")
    history = client.get(f"/api/instances/{instance_id}/history")
    assert detail.status_code == history.status_code, (detail.status_code, history.status_code)
    assert detail.status_code in (200, 403)
    listed = [i["id"] for i in client.get("/api/instances").get_json()["items"]]
    assert (instance_id in listed) is (detail.status_code == 200)
    if detail.status_code == 403:
        assert f"read instance {instance_id}" in detail.get_json()["message"]
    return detail.status_code == 200


def test_agents_read_only_instances_they_started_or_have_a_task_in(as_user, approval):
    ana, bruno, carla, olga, root = (as_user[n] for n in ("ana", "bruno", "carla", "olga", "root"))
    mine = _start(ana)
    theirs = _start(olga)  # an operator started it: agents need a task of theirs
    assert _reads(ana, mine["id"]) and _reads(ana, theirs["id"])  # started / sales task open
    assert not _reads(bruno, mine["id"]) and not _reads(bruno, theirs["id"])
    assert _reads(carla, theirs["id"])  # her groups: sales and managers
    assert bruno.get("/api/instances").get_json() == {"items": [], "total": 0}

    _complete(ana, theirs["tasks"][0]["id"], {"amount": 5})  # the next task is the managers'
    assert _reads(ana, theirs["id"])  # she completed a task of it
    assert _reads(bruno, theirs["id"])  # an open task of his group
    approve = bruno.get("/api/tasks").get_json()["items"][0]
    _complete(bruno, approve["id"], {"approved": True})
    assert _reads(bruno, theirs["id"])  # completed by him
    assert not _reads(carla, theirs["id"])  # finished: no open task, she completed none
    assert _reads(olga, theirs["id"]) and _reads(root, mine["id"])
    assert olga.get("/api/instances").get_json()["total"] == 2
    assert ana.get("/api/instances").get_json()["total"] == 2
    assert carla.get("/api/instances").get_json()["total"] == 1  # ana's, still open for sales


def test_designers_read_definitions_but_no_instances(as_user, approval):
    instance = _start(as_user["ana"])
    diego = as_user["diego"]
    assert diego.get("/api/definitions").status_code == 200
    for url in ("/api/instances", f"/api/instances/{instance['id']}",
                f"/api/instances/{instance['id']}/history"):
        response = diego.get(url)
        assert response.status_code == 403 and response.get_json()["code"] == 403


@pytest.mark.parametrize("user,allowed", [
    ("ana", False), ("diego", False), ("olga", True), ("root", True)])
def test_only_operators_and_admins_list_incidents(as_user, user, allowed):
    response = as_user[user].get("/api/incidents")
    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert response.get_json()["message"] == "not allowed to list incidents"


def test_the_instance_rule_is_pure():
    from app.domain.access import Actor, TaskFacts, can_read_instance
    from app.domain.states import Role

    ana = Actor("ana", Role.AGENT, frozenset({"sales"}))
    group_task = TaskFacts(open=True, assignee=None, candidate_groups=("sales",))
    closed = TaskFacts(open=False, assignee=None, candidate_groups=("sales",),
                       completed_by="bruno")
    assert can_read_instance(ana, ["ana"], [])
    assert can_read_instance(ana, [None], [group_task])
    assert not can_read_instance(ana, ["bruno"], [closed])
    assert can_read_instance(ana, [None], [TaskFacts(False, "ana", ("x",), "ana")])
    assert not can_read_instance(ana, [None], [TaskFacts(True, "bruno", ("x",))])
    assert can_read_instance(Actor("olga", Role.OPERATOR), [], [])
    assert not can_read_instance(Actor("diego", Role.DESIGNER, frozenset({"sales"})), ["diego"],
                                 [group_task])
