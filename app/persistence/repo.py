"""Queries shared by several services. The caller passes the session and owns the transaction."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.domain.states import IncidentStatus, JobStatus, TaskStatus

from .models import (
    Event,
    Incident,
    Job,
    MessageSubscription,
    ProcessDefinition,
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


def definition_of(session: Session, instance: ProcessInstance) -> ProcessDefinition:
    return session.get(ProcessDefinition, instance.definition_id)


def add_event(session: Session, instance_id: int, actor: str | None, kind: str, **detail) -> None:
    session.add(Event(instance_id=instance_id, actor=actor, kind=kind, detail=detail))


def open_tasks(session: Session, instance_id: int) -> list[Task]:
    return list(session.scalars(select(Task).where(
        Task.instance_id == instance_id, Task.status == TaskStatus.OPEN)))


def open_incidents(session: Session, instance_id: int) -> list[Incident]:
    return list(session.scalars(select(Incident).where(
        Incident.instance_id == instance_id, Incident.status == IncidentStatus.OPEN)))


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
