"""Queries shared by several services. The caller passes the session and owns the transaction.

What an engine step reads and writes besides the instance and its tasks (timer and outbox
jobs, message subscriptions, incidents) is done with prebuilt Core statements: one statement
per read or batch of writes, compiled once.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.domain.states import IncidentStatus, JobStatus

from .models import Incident, Job, MessageSubscription

JOBS = Job.__table__
SUBSCRIPTIONS = MessageSubscription.__table__
INCIDENTS = Incident.__table__
_WAITING = JOBS.c.status.in_([JobStatus.PENDING, JobStatus.RUNNING])
_PENDING_JOBS = select(JOBS.c.id, JOBS.c.spiff_task_id, JOBS.c.due_at).where(
    JOBS.c.instance_id == bindparam("instance_id"), JOBS.c.kind == bindparam("kind"), _WAITING)
_INSERT_JOBS = insert(JOBS).returning(JOBS.c.id, sort_by_parameter_order=True)
_DELETE_JOBS = delete(JOBS).where(JOBS.c.id.in_(bindparam("ids", expanding=True)))
_DELETE_PENDING = delete(JOBS).where(
    JOBS.c.instance_id == bindparam("instance_id"),
    JOBS.c.kind.in_(bindparam("kinds", expanding=True)), _WAITING)
_SUBSCRIPTIONS = select(SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.message_name,
                        SUBSCRIPTIONS.c.correlation_key).where(
    SUBSCRIPTIONS.c.instance_id == bindparam("instance_id"))
_INSERT_SUBSCRIPTIONS = insert(SUBSCRIPTIONS)
_DELETE_SUBSCRIPTIONS = delete(SUBSCRIPTIONS).where(
    SUBSCRIPTIONS.c.id.in_(bindparam("ids", expanding=True)))
_DELETE_ALL_SUBSCRIPTIONS = delete(SUBSCRIPTIONS).where(
    SUBSCRIPTIONS.c.instance_id == bindparam("instance_id"))
_OPEN_INCIDENTS = select(INCIDENTS).where(
    INCIDENTS.c.instance_id == bindparam("instance_id"),
    INCIDENTS.c.status == IncidentStatus.OPEN).order_by(INCIDENTS.c.id)
_INSERT_INCIDENTS = insert(INCIDENTS).returning(*INCIDENTS.c, sort_by_parameter_order=True)
_RESOLVE_INCIDENTS = update(INCIDENTS).where(
    INCIDENTS.c.instance_id == bindparam("of_instance"),
    INCIDENTS.c.status == IncidentStatus.OPEN).values(
    status=IncidentStatus.RESOLVED, resolved_at=bindparam("at"), resolved_by=bindparam("by"))


def get_or_404(session: Session, model, ident: int, label: str):
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"{label} {ident} not found")
    return row


def pending_jobs(session: Session, instance_id: int, kind: str) -> list:
    """(id, spiff_task_id, due_at) of the instance's pending or running jobs of a kind."""
    return session.connection().execute(
        _PENDING_JOBS, {"instance_id": instance_id, "kind": kind}).all()


def insert_jobs(session: Session, rows: list[dict]) -> list[int]:
    """New jobs (column values); their ids, in order."""
    if not rows:
        return []
    return list(session.connection().execute(_INSERT_JOBS, rows).scalars())


def delete_jobs(session: Session, ids: list[int]) -> None:
    if ids:
        session.connection().execute(_DELETE_JOBS, {"ids": ids})


def delete_pending_jobs(session: Session, instance_id: int, kinds: list[str]) -> None:
    """Drop an instance's pending and running jobs of these kinds in one statement."""
    if kinds:
        session.connection().execute(_DELETE_PENDING, {"instance_id": instance_id,
                                                       "kinds": kinds})


def subscriptions(session: Session, instance_id: int) -> list:
    """(id, message_name, correlation_key) of what the instance waits for."""
    return session.connection().execute(_SUBSCRIPTIONS, {"instance_id": instance_id}).all()


def change_subscriptions(session: Session, drop: list[int], add: list[dict]) -> None:
    if drop:
        session.connection().execute(_DELETE_SUBSCRIPTIONS, {"ids": drop})
    if add:
        session.connection().execute(_INSERT_SUBSCRIPTIONS, add)


def delete_subscriptions(session: Session, instance_id: int) -> None:
    session.connection().execute(_DELETE_ALL_SUBSCRIPTIONS, {"instance_id": instance_id})


def open_incidents(session: Session, instance_id: int) -> list:
    return session.connection().execute(_OPEN_INCIDENTS, {"instance_id": instance_id}).all()


def insert_incidents(session: Session, rows: list[dict]) -> list:
    """New incidents (column values); their rows as stored."""
    if not rows:
        return []
    return session.connection().execute(_INSERT_INCIDENTS, rows).all()


def resolve_incidents(session: Session, instance_id: int, by: str, at) -> None:
    """Mark the instance's open incidents resolved (it was cancelled)."""
    session.connection().execute(_RESOLVE_INCIDENTS, {"of_instance": instance_id, "by": by,
                                                      "at": at})
