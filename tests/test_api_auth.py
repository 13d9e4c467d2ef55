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
