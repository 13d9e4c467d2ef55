"""The process_instance row of the engine's hot path, read and written with prebuilt Core
statements (no ORM unit of work): one statement per read or write, compiled once.

An `InstanceRow` is a plain mutable record; whoever changes it calls `save` (or `insert` for a
new one) inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.domain.errors import NotFound

from .crm import CaseInstance
from .models import ProcessInstance, Task

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
_WITH_CASE = select(*_COLUMNS, CaseInstance.__table__.c.case_id).select_from(
    TABLE.outerjoin(CaseInstance.__table__, CaseInstance.__table__.c.instance_id == TABLE.c.id)
).where(TABLE.c.id == bindparam("instance_id"))
_LOCK = _BY_ID.with_for_update()
_LOCK_OF_TASK = select(*_COLUMNS).where(TABLE.c.id == select(_TASK.c.instance_id).where(
    _TASK.c.id == bindparam("task_id")).scalar_subquery()).with_for_update()
_LOCK_MANY = select(*_COLUMNS).where(TABLE.c.id.in_(bindparam("ids", expanding=True))) \
    .order_by(TABLE.c.id)
_INSERT = insert(TABLE).returning(TABLE.c.id)
_SAVE = update(TABLE).where(TABLE.c.id == bindparam("row_id"), TABLE.c.version ==
                            bindparam("row_version"))


def _row(found) -> InstanceRow:
    return InstanceRow(*found)


def get(session: Session, instance_id: int) -> InstanceRow:
    found = session.connection().execute(_BY_ID, {"instance_id": instance_id}).first()
    if found is None:
        raise NotFound(f"instance {instance_id} not found")
    return _row(found)


def get_with_case(session: Session, instance_id: int) -> tuple[InstanceRow, int | None]:
    """The instance and the support case it works for (None: none)."""
    found = session.connection().execute(_WITH_CASE, {"instance_id": instance_id}).first()
    if found is None:
        raise NotFound(f"instance {instance_id} not found")
    return _row(found[:-1]), found[-1]


def lock(session: Session, instance_id: int) -> InstanceRow:
    """The instance, locked for writing (row lock on PostgreSQL; SQLite serializes writers)."""
    found = session.connection().execute(_LOCK, {"instance_id": instance_id}).first()
    if found is None:
        raise NotFound(f"instance {instance_id} not found")
    return _row(found)


def lock_of_task(session: Session, task_id: int) -> InstanceRow | None:
    """Lock the instance of a task in one statement (None: no such task). Read the task
    after this: then it is current (a row read before the lock may have changed)."""
    found = session.connection().execute(_LOCK_OF_TASK, {"task_id": task_id}).first()
    return None if found is None else _row(found)


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
    if result.rowcount != 1:  # the caller holds the row lock: only a bug gets here
        raise RuntimeError(f"instance {row.id} changed under its lock")
    row.version += 1
