"""Incidents: failures an operator looks at, then retries or cancels the instance."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.domain.access import Actor, can_operate, require
from app.domain.errors import Conflict, NotFound
from app.domain.states import IncidentStatus, InstanceStatus, JobStatus
from app.persistence import event_log, instance_rows
from app.persistence.models import Incident, Job, utcnow

from . import progress
from .instances import definition_of, process_spec
from .views import incident_item


def search(ctx, actor: Actor, instance_id: int | None = None, status: str | None = None) -> dict:
    require(can_operate(actor), "list incidents")
    query = select(Incident).order_by(Incident.id.desc())
    if instance_id is not None:
        query = query.where(Incident.instance_id == instance_id)
    if status is not None:
        query = query.where(Incident.status == status)
    with ctx.read() as session:
        return {"items": [incident_item(i) for i in session.scalars(query)]}


def retry(ctx, actor: Actor, incident_id: int) -> dict:
    require(can_operate(actor), "retry incidents")
    with ctx.unit() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        instance = instance_rows.lock(session, incident.instance_id)
        session.refresh(incident)
        _check(incident, instance)
        _resolve(session, incident, actor)
        jobs = _rerun(ctx, session, incident, instance, actor)
        item = incident_item(incident)
    ctx.dispatcher.dispatch(jobs)
    return item


def _check(incident: Incident, instance) -> None:
    if incident.status != IncidentStatus.OPEN:
        raise Conflict(f"incident {incident.id} is already {incident.status}")
    if instance.status != InstanceStatus.ACTIVE:
        raise Conflict(f"instance {instance.id} is {instance.status}")


def _resolve(session, incident: Incident, actor: Actor) -> None:
    incident.status, incident.resolved_at = IncidentStatus.RESOLVED, utcnow()
    incident.resolved_by = actor.username
    event_log.add(session, incident.instance_id, actor.username, "incident_retried",
                   incident_id=incident.id, element_id=incident.element_id)
    session.flush()


def _rerun(ctx, session, incident: Incident, instance, actor: Actor) -> list[int]:
    if incident.job_id is not None:
        job = session.get(Job, incident.job_id)
        job.status, job.attempts, job.due_at = JobStatus.PENDING, 0, utcnow()
        job.locked_until = utcnow() + timedelta(seconds=ctx.settings.job_timeout_seconds)
        job.finished_at = None
        return [job.id]
    definition = definition_of(ctx, session, instance)
    snap = ctx.engine.retry_task(process_spec(ctx, definition), instance.state,
                                 incident.spiff_task_id)
    return progress.apply(ctx, session, instance, snap, actor.username)
