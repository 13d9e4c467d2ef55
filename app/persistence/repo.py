"""Queries shared by several services. The caller passes the session and owns the transaction."""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.domain.states import IncidentStatus, JobStatus, TaskStatus

from .models import (
    Event,
    Incident,
    Job,
    MessageSubscription,
    ProcessInstance,
    Task,
    TaskGroup,
)


def get_or_404(session: Session, model, ident: int, label: str):
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"{label} {ident} not found")
    return row


def lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    """Load an instance for writing: row lock on PostgreSQL; SQLite writers are serialized."""
    row = session.execute(
        select(ProcessInstance).where(ProcessInstance.id == instance_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"instance {instance_id} not found")
    return row


def lock_instance_of_task(session: Session, task_id: int) -> ProcessInstance | None:
    """Lock the instance of a task (None: no such task) in one statement. Read the task
    after this: then it is current (a row read before the lock may have changed)."""
    return session.execute(
        select(ProcessInstance).where(ProcessInstance.id == select(Task.instance_id).where(
            Task.id == task_id).scalar_subquery()).with_for_update()
    ).scalar_one_or_none()


def add_event(session: Session, instance_id: int, actor: str | None, kind: str, **detail) -> None:
    session.add(Event(instance_id=instance_id, actor=actor, kind=kind, detail=detail))


def open_tasks(session: Session, instance_id: int, also: int | None = None) -> list[Task]:
    """The instance's open tasks (and, in the same query, its task `also`, open or not)."""
    wanted = Task.status == TaskStatus.OPEN
    if also is not None:
        wanted = or_(wanted, Task.id == also)
    return list(session.scalars(select(Task).where(Task.instance_id == instance_id, wanted)
                                .order_by(Task.id)))


def open_incidents(session: Session, instance_id: int) -> list[Incident]:
    return list(session.scalars(select(Incident).where(
        Incident.instance_id == instance_id, Incident.status == IncidentStatus.OPEN)
        .order_by(Incident.id)))


def pending_jobs(session: Session, instance_id: int, kind: str) -> list[Job]:
    return list(session.scalars(select(Job).where(
        Job.instance_id == instance_id, Job.kind == kind,
        Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))))


def subscriptions(session: Session, instance_id: int) -> list[MessageSubscription]:
    return list(session.scalars(select(MessageSubscription).where(
        MessageSubscription.instance_id == instance_id)))


def drop_task_groups(session: Session, task_ids: list[int]) -> None:
    if task_ids:
        session.execute(delete(TaskGroup).where(TaskGroup.task_id.in_(task_ids)))


def delete_pending_jobs(session: Session, instance_id: int, kinds: list[str]) -> None:
    """Drop an instance's pending and running jobs of these kinds in one statement."""
    if kinds:
        session.execute(delete(Job).where(
            Job.instance_id == instance_id, Job.kind.in_(kinds),
            Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
            .execution_options(synchronize_session="evaluate"))


def delete_subscriptions(session: Session, instance_id: int) -> None:
    session.execute(delete(MessageSubscription).where(
        MessageSubscription.instance_id == instance_id)
        .execution_options(synchronize_session="evaluate"))
