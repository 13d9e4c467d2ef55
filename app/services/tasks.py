"""The inbox: listing, claiming, assigning and completing user tasks."""

from __future__ import annotations

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session

from app.domain.access import (
    Actor,
    can_operate,
    can_see_task,
    can_work_task,
    require,
    sees_all_tasks,
)
from app.domain.errors import Conflict, Forbidden, NotFound
from app.domain.states import InstanceStatus, Role, TaskStatus
from app.persistence import repo
from app.persistence.crm import CaseInstance, SupportCase
from app.persistence.models import (
    ProcessInstance,
    Task,
    TaskGroup,
    User,
    utcnow,
)

from . import forms, inbox, progress, sla
from .instances import check_variables, definition_of, process_spec
from .views import instance_summary, task_item


def search(ctx, actor: Actor, *, mine=False, candidate_group=None, process_key=None,
           instance_id=None, status="open", sort=None, page=1, per_page=50) -> dict:
    """Tasks the actor may see. Agents' default order is SLA risk: priority, then the share of
    its case's SLA consumed (never FIFO); others' default is priority."""
    keys = inbox.order_keys(ctx.engine.calendars,
                            sort or ("sla_risk" if actor.role is Role.AGENT else "priority"))
    filters = [Task.process_key == process_key] if process_key is not None else []
    offset = (page - 1) * per_page
    if status == TaskStatus.OPEN and not mine and instance_id is None:
        count, rows = inbox.scoped(actor, candidate_group, filters, keys, offset, per_page)
    else:
        query = _filtered(actor, status, mine, filters, instance_id, candidate_group)
        count, rows = inbox.filtered(query, keys, offset, per_page)
    with ctx.unit() as session:
        total = session.scalar(count)
        return {"items": _items(ctx, session, session.scalars(rows).all()), "total": total}


def _filtered(actor: Actor, status: str, mine: bool, filters: list, instance_id, group):
    if instance_id is not None:
        filters = [*filters, Task.instance_id == instance_id]
    if group:
        filters = [*filters, Task.id.in_(
            select(TaskGroup.task_id).where(TaskGroup.group_name == group))]
    return _visible(select(Task), actor, status, mine).where(*filters)


def _visible(query, actor: Actor, status: str, mine: bool):
    query = query.where(Task.status == status)
    if mine:
        return query.where(or_(Task.assignee == actor.username,
                               Task.completed_by == actor.username))
    if sees_all_tasks(actor):
        return query
    if actor.role is not Role.AGENT:
        return query.where(false())
    theirs = [Task.assignee == actor.username, Task.completed_by == actor.username]
    if actor.groups and status == TaskStatus.OPEN:
        theirs.append(Task.id.in_(
            select(TaskGroup.task_id).where(TaskGroup.group_name.in_(sorted(actor.groups)))))
    return query.where(or_(*theirs))


def _items(ctx, session: Session, rows: list[Task]) -> list[dict]:
    """The tasks with their forms and SLA blocks: one query for all of them."""
    if not rows:
        return []
    found = session.execute(
        select(ProcessInstance.id, ProcessInstance.definition_id, SupportCase)
        .outerjoin(CaseInstance, CaseInstance.instance_id == ProcessInstance.id)
        .outerjoin(SupportCase, SupportCase.id == CaseInstance.case_id)
        .where(ProcessInstance.id.in_({t.instance_id for t in rows}))).all()
    forms = {d.id: d.forms for d in ctx.definitions.get_many(
        session, {definition_id for _, definition_id, _ in found})}
    forms_by_instance = {iid: forms.get(definition_id) for iid, definition_id, _ in found}
    cases = {iid: case for iid, _, case in found if case is not None}
    return [task_item(t, forms_by_instance.get(t.instance_id), _sla(t, cases)) for t in rows]


def _sla(task: Task, cases: dict) -> dict | None:
    case = cases.get(task.instance_id)
    return sla.block(case) if case is not None and task.status == TaskStatus.OPEN else None


def get(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.unit() as session:
        task = _visible_task(session, actor, task_id)
        return _items(ctx, session, [task])[0]


def _visible_task(session: Session, actor: Actor, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    theirs = can_see_task(actor, task.assignee, task.candidate_groups) or \
        task.completed_by == actor.username
    if not theirs:
        raise Forbidden(f"task {task_id} is not yours or your groups'")
    return task


def claim(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.unit() as session:
        task = _open_task(session, actor, task_id)
        if task.assignee not in (None, actor.username):
            raise Conflict(f"task {task_id} is already claimed by {task.assignee}")
        require(can_work_task(actor, None, task.candidate_groups), "claim this task")
        _set_assignee(session, task, None, actor.username, actor, "task_claimed")
        return _items(ctx, session, [task])[0]


def unclaim(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.unit() as session:
        task = _open_task(session, actor, task_id)
        require(task.assignee == actor.username or can_operate(actor), "unclaim this task")
        _set_assignee(session, task, task.assignee, None, actor, "task_unclaimed")
        return _items(ctx, session, [task])[0]


def assign(ctx, actor: Actor, task_id: int, username: str) -> dict:
    require(can_operate(actor), "assign tasks")
    with ctx.unit() as session:
        task = _open_task(session, actor, task_id)
        if session.scalar(select(User.id).where(User.username == username)) is None:
            raise NotFound(f"user {username} not found")
        _set_assignee(session, task, task.assignee, username, actor, "task_assigned")
        return _items(ctx, session, [task])[0]


def _open_task(session: Session, actor: Actor, task_id: int) -> Task:
    task = _visible_task(session, actor, task_id)
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"task {task_id} is {task.status}")
    return task


def _set_assignee(session, task: Task, expected, assignee, actor: Actor, kind: str) -> None:
    result = session.execute(
        update(Task).where(Task.id == task.id, Task.status == TaskStatus.OPEN,
                           Task.assignee.is_(None) if expected is None
                           else Task.assignee == expected)
        .values(assignee=assignee).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(f"task {task.id} changed meanwhile; reload it")
    task.assignee = assignee
    repo.add_event(session, task.instance_id, actor.username, kind, task_id=task.id,
                   name=task.name, assignee=assignee)


def complete(ctx, actor: Actor, task_id: int, data) -> dict:
    with ctx.unit() as session:
        instance = repo.lock_instance_of_task(session, task_id)
        # read under the lock, so current: the task and its instance's open tasks, at once
        rows = repo.open_tasks(session, instance.id, also=task_id) if instance else []
        task = _visible_task(session, actor, task_id)  # loaded above: no query
        open_tasks = [t for t in rows if t.status == TaskStatus.OPEN]
        jobs, summary = _complete_locked(ctx, session, actor, instance, task, data, open_tasks)
    ctx.dispatcher.dispatch(jobs)
    return {"instance": summary}


def _complete_locked(ctx, session, actor, instance, task, data, open_tasks):
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"task {task.id} is no longer open ({task.status})")
    require(can_work_task(actor, task.assignee, task.candidate_groups), "complete this task")
    if instance.status != InstanceStatus.ACTIVE:
        raise Conflict(f"instance {instance.id} is {instance.status}")
    check_variables(data, "data")
    definition = definition_of(ctx, session, instance)
    schema = forms.with_enums((definition.forms or {}).get(task.form_key), task.form_enums)
    forms.validate(schema, data)
    snap = ctx.engine.complete_user_task(process_spec(ctx, definition), instance.state,
                                         task.spiff_task_id, data)
    task.status, task.completed_at = TaskStatus.COMPLETED, utcnow()
    task.completed_by, task.data = actor.username, data
    repo.add_event(session, instance.id, actor.username, "task_completed", task_id=task.id,
                   name=task.name)
    jobs = progress.apply(ctx, session, instance, snap, actor.username, done=task,
                          open_tasks=open_tasks,
                          cause={"task": task.name, "task_id": task.id, "data": data})
    return jobs, instance_summary(instance, definition.version)
