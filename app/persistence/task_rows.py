"""Task rows (the inbox projection) on the engine's hot path, with prebuilt Core statements.

A task offered to exactly one group keeps it in `single_group` (its group inbox is one index
range); only tasks offered to several groups get `task_group` rows, one per group, while
they are open.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from app.domain.states import TaskStatus

from .models import Task, TaskGroup
from .pipeline import DEFERRED

TABLE = Task.__table__
GROUPS = TaskGroup.__table__


@dataclass(slots=True)
class TaskRow:
    id: int | None
    instance_id: int
    spiff_task_id: str
    name: str
    title: str | None
    process_key: str
    candidate_groups: list
    single_group: str | None
    assignee: str | None
    priority: int
    due_at: datetime | None
    form_key: str | None
    ui_form_key: str | None
    form_enums: dict | None
    instructions: str | None
    status: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    data: dict | None
    sla_calendar: str | None = None
    sla_minutes: int | None = None
    sla_base: float | None = None
    sla_frozen_share: float | None = None

    @property
    def shared(self) -> bool:
        """Offered to several groups: its groups are task_group rows while it is open."""
        return len(self.candidate_groups or ()) > 1


NAMES = tuple(f.name for f in fields(TaskRow))
COLUMNS = [TABLE.c[name] for name in NAMES]
_OPEN = TABLE.c.status == TaskStatus.OPEN
_OPEN_OF = select(*COLUMNS).where(TABLE.c.instance_id == bindparam("instance_id"), or_(
    _OPEN, TABLE.c.id == bindparam("also"))).order_by(TABLE.c.id)
_OPEN_OF_MANY = select(*COLUMNS).where(
    TABLE.c.instance_id.in_(bindparam("ids", expanding=True)), _OPEN).order_by(TABLE.c.id)
_BY_ID = select(*COLUMNS).where(TABLE.c.id == bindparam("task_id"))
_INSERT = insert(TABLE).returning(TABLE.c.id, sort_by_parameter_order=True)
# writes whose results nobody reads: sent with the unit's next round trip (pipeline.DEFER)
_COMPLETE = update(TABLE).where(TABLE.c.id == bindparam("task_id")).execution_options(**DEFERRED)
_CANCEL = update(TABLE).where(TABLE.c.id.in_(bindparam("ids", expanding=True))) \
    .values(status=TaskStatus.CANCELLED, completed_at=bindparam("at")).execution_options(**DEFERRED)
_ADD_GROUPS = insert(GROUPS).inline().execution_options(**DEFERRED)
_DROP_GROUPS = delete(GROUPS).where(GROUPS.c.task_id.in_(bindparam("ids", expanding=True))) \
    .execution_options(**DEFERRED)
_RAISE = update(TABLE).where(
    TABLE.c.instance_id.in_(bindparam("instances", expanding=True)), _OPEN,
    TABLE.c.priority > bindparam("rank")).values(priority=bindparam("rank"))
_RAISE_GROUPS = update(GROUPS).where(
    GROUPS.c.task_id.in_(select(TABLE.c.id).where(
        TABLE.c.instance_id.in_(bindparam("instances", expanding=True)), _OPEN)),
    GROUPS.c.priority > bindparam("rank")).values(priority=bindparam("rank"))


def row_of(found) -> TaskRow:
    return TaskRow(*found)


def get(session: Session, task_id: int) -> TaskRow | None:
    found = session.connection().execute(_BY_ID, {"task_id": task_id}).first()
    return None if found is None else row_of(found)


def open_of(session: Session, instance_id: int, also: int | None = None) -> list[TaskRow]:
    """The instance's open tasks (and, in the same query, its task `also`, open or not)."""
    return [row_of(found) for found in session.connection().execute(
        _OPEN_OF, {"instance_id": instance_id, "also": also})]


def open_of_many(session: Session, instance_ids) -> list[TaskRow]:
    return [row_of(found) for found in session.connection().execute(
        _OPEN_OF_MANY, {"ids": sorted(instance_ids)})]


def insert_rows(session: Session, rows: list[TaskRow]) -> None:
    """Insert new tasks (their ids are set on the rows) and the groups of shared ones."""
    if not rows:
        return
    values = [{name: getattr(row, name) for name in NAMES if name != "id"} for row in rows]
    ids = session.connection().execute(_INSERT, values).scalars().all()
    for row, new_id in zip(rows, ids, strict=True):
        row.id = new_id
    groups = [{"task_id": row.id, "group_name": group, "priority": row.priority,
               "created_at": row.created_at, "process_key": row.process_key}
              for row in rows if row.shared for group in row.candidate_groups]
    if groups:
        session.connection().execute(_ADD_GROUPS, groups)


def complete(session: Session, task: TaskRow, by: str, data: dict, at: datetime) -> None:
    task.status, task.completed_at, task.completed_by, task.data = \
        TaskStatus.COMPLETED, at, by, data
    session.connection().execute(_COMPLETE, {
        "task_id": task.id, "status": task.status, "completed_at": at, "completed_by": by,
        "data": data})


def cancel(session: Session, tasks: list[TaskRow], at: datetime) -> None:
    """Close open tasks the instance no longer has."""
    if not tasks:
        return
    for task in tasks:
        task.status, task.completed_at = TaskStatus.CANCELLED, at
    session.connection().execute(_CANCEL, {"ids": [t.id for t in tasks], "at": at})


def raise_priority(session: Session, instance_ids: list[int], rank: int) -> None:
    """The open tasks of these instances get at least priority `rank` (1 = most urgent),
    their task_group rows too."""
    params = {"instances": instance_ids, "rank": rank}
    session.connection().execute(_RAISE, params)
    session.connection().execute(_RAISE_GROUPS, params)


def drop_groups(session: Session, tasks: list[TaskRow]) -> None:
    """The task_group rows of closed tasks (only shared tasks have any)."""
    ids = [task.id for task in tasks if task.shared]
    if ids:
        session.connection().execute(_DROP_GROUPS, {"ids": ids})
