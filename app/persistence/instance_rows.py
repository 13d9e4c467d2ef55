"""The process_instance row of the engine's hot path, read and written with prebuilt Core
statements (no ORM unit of work): one statement per read or write, compiled once.

An `InstanceRow` is a plain mutable record; whoever changes it calls `save` (or `insert` for a
new one) inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.domain.states import IncidentStatus, TaskStatus

from . import pipeline, task_rows
from .crm import CaseInstance
from .models import Incident, ProcessInstance, Task
from .pipeline import DEFERRED
from .task_rows import TaskRow

TABLE = ProcessInstance.__table__
_TASK = Task.__table__


@dataclass(slots=True)
class InstanceRow:
    id: int | None
    definition_id: int
    process_key: str
    business_key: str | None
    status: str
    state: bytes
    version: int
    started_at: datetime
    ended_at: datetime | None
    started_by: str | None
    has_timers: bool
    has_subscriptions: bool
    has_service_calls: bool


NAMES = tuple(f.name for f in fields(InstanceRow))
_COLUMNS = [TABLE.c[name] for name in NAMES]
_MUTABLE = ("status", "state", "ended_at", "has_timers", "has_subscriptions",
            "has_service_calls")
_BY_ID = select(*_COLUMNS).where(TABLE.c.id == bindparam("instance_id"))
_INCIDENT = Incident.__table__
_READ = select(*_COLUMNS, CaseInstance.__table__.c.case_id, exists().where(
    _INCIDENT.c.instance_id == TABLE.c.id, _INCIDENT.c.status == IncidentStatus.OPEN)
).select_from(TABLE.outerjoin(
    CaseInstance.__table__, CaseInstance.__table__.c.instance_id == TABLE.c.id)
).where(TABLE.c.id == bindparam("instance_id"))
_LOCK = _BY_ID.with_for_update()
_LOCKED = select(*_COLUMNS).where(TABLE.c.id == select(_TASK.c.instance_id).where(
    _TASK.c.id == bindparam("task_id")).scalar_subquery()).with_for_update().cte("locked")
# the version the statement's snapshot holds: it differs from the locked (latest) row's when
# another transaction committed while this one waited for the lock
_SEEN = select(TABLE.c.version).where(TABLE.c.id == _LOCKED.c.id).scalar_subquery()
_LOCK_OF_TASK = select(*_LOCKED.c, _SEEN, *task_rows.COLUMNS).select_from(_LOCKED.outerjoin(
    _TASK, and_(_TASK.c.instance_id == _LOCKED.c.id, or_(
        _TASK.c.status == TaskStatus.OPEN, _TASK.c.id == bindparam("task_id"))))
).order_by(_TASK.c.id)
_LOCK_MANY = select(*_COLUMNS).where(TABLE.c.id.in_(bindparam("ids", expanding=True))) \
    .order_by(TABLE.c.id)
_INSERT = insert(TABLE).returning(TABLE.c.id)
_SAVE = update(TABLE).where(TABLE.c.id == bindparam("row_id"), TABLE.c.version ==
                            bindparam("row_version")).execution_options(**DEFERRED)


def _row(found) -> InstanceRow:
    return InstanceRow(*found)


def read(session: Session, instance_id: int) -> tuple[InstanceRow, int | None, bool]:
    """The instance, the support case it works for (None: none) and whether it has open
    incidents."""
    found = session.connection().execute(_READ, {"instance_id": instance_id}).first()
    if found is None:
        raise NotFound(f"instance {instance_id} not found")
    return _row(found[:-2]), found[-2], found[-1]


def lock(session: Session, instance_id: int) -> InstanceRow:
    """The instance, locked for writing (row lock on PostgreSQL; SQLite serializes writers)."""
    found = session.connection().execute(_LOCK, {"instance_id": instance_id}).first()
    if found is None:
        raise NotFound(f"instance {instance_id} not found")
    return _row(found)


def lock_of_task(session: Session, task_id: int) -> tuple[InstanceRow | None, list[TaskRow]]:
    """Lock the instance of a task and read its open tasks and that task, current as of the
    lock (None, []: no such task). One statement, unless another transaction changed the
    instance while this one waited for the lock: then its tasks are read again."""
    found = session.connection().execute(_LOCK_OF_TASK, {"task_id": task_id}).all()
    if not found:
        return None, []
    width = len(NAMES)
    instance = _row(found[0][:width])
    if found[0][width] != instance.version:
        return instance, task_rows.open_of(session, instance.id, also=task_id)
    return instance, [task_rows.row_of(row[width + 1:]) for row in found
                      if row[width + 1] is not None]


def lock_many(session: Session, ids, skip_locked: bool = False) -> dict[int, InstanceRow]:
    """Several instances locked in id order; with `skip_locked`, those another transaction
    holds are left out."""
    statement = _LOCK_MANY.with_for_update(skip_locked=skip_locked)
    return {row.id: row for row in map(_row, session.connection().execute(
        statement, {"ids": sorted(ids)}))}


def insert_row(session: Session, row: InstanceRow) -> int:
    values = dict(zip(NAMES, astuple(row), strict=True))
    del values["id"]
    row.id = session.connection().execute(_INSERT, values).scalar_one()
    return row.id


def save(session: Session, row: InstanceRow) -> None:
    """Write the row's mutable fields and bump its version."""
    values = {name: getattr(row, name) for name in _MUTABLE}
    result = session.connection().execute(_SAVE, {
        "row_id": row.id, "row_version": row.version, "version": row.version + 1, **values})
    # the caller holds the row lock: only a bug gets here
    pipeline.expect_rows(session, result, 1,
                         RuntimeError(f"instance {row.id} changed under its lock"))
    row.version += 1
