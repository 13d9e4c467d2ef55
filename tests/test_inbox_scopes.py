"""The inbox queries through the API: a task offered to one group is found by its
`single_group` index range, a task offered to several groups through its task_group rows
(kept only while it is open), an agent's page is merged from those scopes and the tasks
assigned to them elsewhere, and the total counts each visible task once. On SQLite and
PostgreSQL, with real .bpmn files (tests/data/bpmn/review.bpmn: a triage task offered to sales
and managers, then a follow-up for sales)."""

from __future__ import annotations

import pytest
from conftest import DATA, deploy_files
from sqlalchemy import select

from app.persistence import task_rows
from app.persistence.models import Task, TaskGroup


@pytest.fixture
def review(as_user, approval):
    answer = deploy_files(as_user, DATA / "bpmn" / "review.bpmn")
    assert answer.status_code == 201, answer.get_json()


def _start(as_user, process_key: str, rank: int, variables: dict | None = None) -> int:
    answer = as_user["ana"].post("/api/instances", json={
        "process_key": process_key, "variables": {"rank": rank, **(variables or {})}})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def _inbox(client, query: str = "") -> dict:
    answer = client.get(f"/api/tasks?sort=priority{query}")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _names(page: dict) -> list[tuple[str, int]]:
    return [(item["name"], item["instance_id"]) for item in page["items"]]


def _group_rows(ctx) -> list[tuple[int, str]]:
    with ctx.unit() as session:
        return sorted(session.execute(select(TaskGroup.task_id, TaskGroup.group_name)).all())


def test_only_shared_tasks_keep_group_rows_and_only_while_open(as_user, review, ctx):
    iid = _start(as_user, "review", 2)
    triage = _inbox(as_user["ana"], f"&instance_id={iid}")["items"][0]
    assert triage["candidate_groups"] == ["sales", "managers"]
    assert _group_rows(ctx) == [(triage["id"], "managers"), (triage["id"], "sales")]

    done = as_user["bruno"].post(f"/api/tasks/{triage['id']}/complete", json={"data": {}})
    assert done.status_code == 200, done.get_json()
    follow = _inbox(as_user["ana"], f"&instance_id={iid}")["items"][0]
    assert follow["name"] == "follow_up" and _group_rows(ctx) == []
    with ctx.unit() as session:
        assert session.get(Task, follow["id"]).single_group == "sales"
        assert session.get(Task, triage["id"]).single_group is None


def test_each_agent_sees_the_tasks_of_its_groups_once(as_user, review):
    shared = _start(as_user, "review", 1)
    single = _start(as_user, "approval", 3)  # enter_amount: sales only

    assert _names(_inbox(as_user["ana"])) == [("triage", shared), ("enter_amount", single)]
    assert _names(_inbox(as_user["bruno"])) == [("triage", shared)]
    carla = _inbox(as_user["carla"])  # sales and managers: the shared task once
    assert _names(carla) == [("triage", shared), ("enter_amount", single)]
    assert carla["total"] == 2
    assert _inbox(as_user["olga"])["total"] == 2


def test_candidate_group_filter_finds_single_and_shared_tasks(as_user, review):
    shared = _start(as_user, "review", 1)
    single = _start(as_user, "approval", 3)

    for user in ("carla", "olga"):
        assert _names(_inbox(as_user[user], "&candidate_group=managers")) == [("triage", shared)]
        assert _names(_inbox(as_user[user], "&candidate_group=sales")) == [
            ("triage", shared), ("enter_amount", single)]
    assert _inbox(as_user["bruno"], "&candidate_group=sales")["items"] == []


def test_an_operator_filters_groups_by_process(as_user, review):
    shared = _start(as_user, "review", 1)
    single = _start(as_user, "approval", 3)
    olga = as_user["olga"]

    page = _inbox(olga, "&candidate_group=sales&process_key=review")
    assert _names(page) == [("triage", shared)] and page["total"] == 1
    page = _inbox(olga, "&candidate_group=sales&process_key=approval")
    assert _names(page) == [("enter_amount", single)] and page["total"] == 1
    page = _inbox(olga, "&candidate_group=managers&process_key=approval")
    assert page == {"items": [], "total": 0}


def test_a_task_assigned_outside_the_agents_groups_is_in_its_inbox(as_user, review):
    approval_task = _start(as_user, "approval", 3)
    enter = _inbox(as_user["ana"], f"&instance_id={approval_task}")["items"][0]
    assert as_user["olga"].post(f"/api/tasks/{enter['id']}/assign",
                                json={"username": "bruno"}).status_code == 200

    page = _inbox(as_user["bruno"])
    assert _names(page) == [("enter_amount", approval_task)] and page["total"] == 1
    assert page["items"][0]["assignee"] == "bruno"


def test_pages_merge_the_scopes_in_order_with_one_total(as_user, review):
    """carla's inbox has single-group tasks of sales, shared tasks and managers' tasks: every
    page is in (priority, created) order and the pages together are the whole inbox."""
    started = [_start(as_user, "review", rank) for rank in (5, 1, 4)]
    started += [_start(as_user, "approval", 2) for _ in range(3)]  # enter_amount: priority 2
    everything = _inbox(as_user["carla"], "&per_page=100")
    assert everything["total"] == 6
    keys = [(item["priority"], item["created_at"], item["id"]) for item in everything["items"]]
    assert keys == sorted(keys)

    pages = [_inbox(as_user["carla"], f"&per_page=4&page={n}") for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [4, 2, 0]
    assert all(p["total"] == 6 for p in pages)
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything["items"]]


def test_completed_tasks_are_listed_for_who_completed_them(as_user, review):
    iid = _start(as_user, "review", 1)
    triage = _inbox(as_user["ana"], f"&instance_id={iid}")["items"][0]
    as_user["bruno"].post(f"/api/tasks/{triage['id']}/complete", json={"data": {}})

    mine = _inbox(as_user["bruno"], "&status=completed")
    assert _names(mine) == [("triage", iid)] and mine["items"][0]["completed_by"] == "bruno"
    assert _inbox(as_user["ana"], "&status=completed")["items"] == []
    assert _inbox(as_user["ana"], "&status=completed&mine=true")["items"] == []


def test_shared_rows_keep_the_tasks_sort_keys_when_its_priority_is_raised(as_user, review, ctx):
    """The SLA ladder raises the priority of a case's open tasks (task_rows.raise_priority):
    the task_group copies of a shared task follow, so its group ranges stay in order."""
    low = _start(as_user, "review", 4)
    high = _start(as_user, "review", 2)
    assert _names(_inbox(as_user["bruno"])) == [("triage", high), ("triage", low)]
    with ctx.unit() as session:
        triage = session.scalars(select(Task).where(Task.instance_id == low)).one()
        groups = session.scalars(select(TaskGroup).where(TaskGroup.task_id == triage.id)).all()
        assert {(g.priority, g.created_at, g.process_key) for g in groups} == {
            (4, triage.created_at, "review")}
        task_rows.raise_priority(session, [low], 1)

    assert _names(_inbox(as_user["bruno"])) == [("triage", low), ("triage", high)]
    with ctx.unit() as session:
        assert session.get(Task, triage.id).priority == 1
        assert {g.priority for g in session.scalars(
            select(TaskGroup).where(TaskGroup.task_id == triage.id))} == {1}
        task_rows.raise_priority(session, [low], 3)  # never lowers it
    assert _inbox(as_user["bruno"])["items"][0]["priority"] == 1
