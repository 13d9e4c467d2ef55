"""The inbox: listing, claiming, assigning and completing user tasks."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import bindparam, select, update
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
from app.persistence import event_log, instance_rows, task_rows
from app.persistence.models import User, utcnow
from app.persistence.task_rows import TaskRow

from . import forms, inbox, progress, sla
from .instances import check_variables, definition_of, process_spec
from .views import instance_summary, task_item

_FIELDS = len(task_rows.NAMES)
_TASK = task_rows.TABLE
_ASSIGN = update(_TASK).where(
    _TASK.c.id == bindparam("task_id"), _TASK.c.status == TaskStatus.OPEN).values(
    assignee=bindparam("new_assignee"))
_USER = select(User.__table__.c.id).where(User.__table__.c.username == bindparam("username"))


def search(ctx, actor: Actor, *, mine=False, candidate_group=None, process_key=None,
           instance_id=None, status="open", sort=None, page=1, per_page=50) -> dict:
    """Tasks the actor may see. Agents' default order is SLA risk: priority, then the share of
    its case's SLA consumed (never FIFO); others' default is priority."""
    sort = sort or ("sla_risk" if actor.role is Role.AGENT else "priority")
    shape = _shape(ctx, actor, sort, mine, candidate_group, process_key, instance_id, status)
    count, query = inbox.statements(shape)
    offset = (page - 1) * per_page
    params = {"me": actor.username, "status": status,
              "instance_id": instance_id, "process_key": process_key,
              "group_list": [candidate_group], "offset": offset, "limit": per_page,
              "window": offset + per_page, **_group_params(shape, actor, candidate_group),
              **inbox.clock_values(shape, ctx.engine.calendars)}
    with ctx.read() as session:
        found = [_decode(row) for row in session.connection().execute(query, params)]
        total = offset + len(found) if _counted(found, offset, per_page) else \
            session.connection().execute(count, params).scalar_one()
        return {"items": _items(ctx, session, found), "total": total}


def _shape(ctx, actor: Actor, sort: str, mine: bool, group, process_key, instance_id,
           status) -> inbox.Shape:
    calendars = tuple(sorted(ctx.engine.calendars))
    if status == TaskStatus.OPEN and not mine and instance_id is None:
        kind, groups = inbox.scope_kind(actor, group)
        return inbox.Shape(sort, calendars, True, kind, groups,
                           process_key=process_key is not None)
    if mine:
        visible = "mine"
    elif sees_all_tasks(actor):
        visible = "all"
    elif actor.role is Role.AGENT:
        visible = "agent" if actor.groups else "mine"
    else:
        visible = "none"
    return inbox.Shape(sort, calendars, False, visible, status=True,
                       instance=instance_id is not None,
                       process_key=process_key is not None, group=bool(group))


def _group_params(shape: inbox.Shape, actor: Actor, group: str | None) -> dict:
    """`groups`, and g0, g1...: the groups a scoped search reads, one by one."""
    if shape.visible in ("group", "mine_in_group"):
        return {"groups": [group], "g0": group}
    groups = sorted(actor.groups)
    return {"groups": groups, **{f"g{i}": name for i, name in enumerate(groups)}}


def _counted(found: list, offset: int, per_page: int) -> bool:
    """The page itself tells the total: it is not full, and it is the first or not empty."""
    return len(found) < per_page and (bool(found) or offset == 0)


def _decode(row) -> tuple[TaskRow, int, sla.CaseClock | None]:
    """A page row: the task, its definition id, its case's SLA clock facts (or None)."""
    task = task_rows.row_of(row[:_FIELDS])
    case = sla.CaseClock(*row[_FIELDS + 2:]) if row.case_id is not None else None
    return task, row.definition_id, case


def _items(ctx, session: Session, found: list) -> list[dict]:
    """The tasks with their forms and SLA blocks."""
    definitions = ctx.definitions.get_many(session, {definition for _, definition, _ in found})
    forms = {d.id: d.forms for d in definitions}
    return [task_item(task, forms.get(definition), _sla(task, case))
            for task, definition, case in found]


def _sla(task: TaskRow, case: sla.CaseClock | None) -> dict | None:
    return sla.block(case) if case is not None and task.status == TaskStatus.OPEN else None


def get(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.read() as session:
        found = _one(session, actor, task_id)
        return _items(ctx, session, [found])[0]


def _one(session: Session, actor: Actor, task_id: int):
    """The task (decoded page row) when the actor may see it."""
    row = session.connection().execute(inbox.BY_ID, {"task_id": task_id}).first()
    found = _decode(row) if row is not None else None
    _check_visible(actor, found[0] if found else None, task_id)
    return found


def _check_visible(actor: Actor, task: TaskRow | None, task_id: int) -> TaskRow:
    if task is None:
        raise NotFound(f"task {task_id} not found")
    theirs = can_see_task(actor, task.assignee, task.candidate_groups) or \
        task.completed_by == actor.username
    if not theirs:
        raise Forbidden(f"task {task_id} is not yours or your groups'")
    return task


def claim(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.unit() as session:
        found = _open_task(session, actor, task_id)
        task = found[0]
        if task.assignee not in (None, actor.username):
            raise Conflict(f"task {task_id} is already claimed by {task.assignee}")
        require(can_work_task(actor, None, task.candidate_groups), "claim this task")
        _set_assignee(session, task, None, actor.username, actor, "task_claimed")
        return _items(ctx, session, [found])[0]


def unclaim(ctx, actor: Actor, task_id: int) -> dict:
    with ctx.unit() as session:
        found = _open_task(session, actor, task_id)
        task = found[0]
        require(task.assignee == actor.username or can_operate(actor), "unclaim this task")
        _set_assignee(session, task, task.assignee, None, actor, "task_unclaimed")
        return _items(ctx, session, [found])[0]


def assign(ctx, actor: Actor, task_id: int, username: str) -> dict:
    require(can_operate(actor), "assign tasks")
    with ctx.unit() as session:
        found = _open_task(session, actor, task_id)
        if session.connection().execute(_USER, {"username": username}).first() is None:
            raise NotFound(f"user {username} not found")
        _set_assignee(session, found[0], found[0].assignee, username, actor, "task_assigned")
        return _items(ctx, session, [found])[0]


def _open_task(session: Session, actor: Actor, task_id: int):
    found = _one(session, actor, task_id)
    if found[0].status != TaskStatus.OPEN:
        raise Conflict(f"task {task_id} is {found[0].status}")
    return found


def _set_assignee(session, task: TaskRow, expected, assignee, actor: Actor, kind: str) -> None:
    result = session.connection().execute(
        _assign_where(expected is None), {"task_id": task.id, "expected": expected,
                                          "new_assignee": assignee})
    if result.rowcount != 1:
        raise Conflict(f"task {task.id} changed meanwhile; reload it")
    task.assignee = assignee
    event_log.add(session, task.instance_id, actor.username, kind, task_id=task.id,
                  name=task.name, assignee=assignee)


@lru_cache(maxsize=2)
def _assign_where(unassigned: bool):
    """The assignee changes only from what the caller saw (none, or `expected`)."""
    return _ASSIGN.where(_TASK.c.assignee.is_(None) if unassigned
                         else _TASK.c.assignee == bindparam("expected"))


def complete(ctx, actor: Actor, task_id: int, data) -> dict:
    with ctx.unit() as session:
        instance, rows = instance_rows.lock_of_task(session, task_id)
        task = _check_visible(actor, next((t for t in rows if t.id == task_id), None),
                              task_id)
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
    task_rows.complete(session, task, actor.username, data, utcnow())
    event_log.add(session, instance.id, actor.username, "task_completed", task_id=task.id,
                  name=task.name)
    jobs = progress.apply(ctx, session, instance, snap, actor.username, done=task,
                          open_tasks=open_tasks,
                          cause={"task": task.name, "task_id": task.id, "data": data})
    return jobs, instance_summary(instance, definition.version)
