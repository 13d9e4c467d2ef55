"""Running outbox jobs: service calls (through a connector) and timers.

A job is claimed with a conditional UPDATE, so running it twice is harmless: the second run
finds it no longer pending, or finds its task no longer STARTED.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.domain.errors import Conflict
from app.domain.states import IncidentStatus, InstanceStatus, JobKind, JobStatus
from app.persistence import repo
from app.persistence.models import Incident, Job, ProcessInstance, utcnow
from workers.connectors import ConnectorError, run_connector

from . import messages, progress
from .instances import process_spec

_EVENT = {JobKind.TIMER: "timer_fired", JobKind.SERVICE_CALL: "service_task_completed"}
_ANY_INSTANCE = (JobKind.MESSAGE, JobKind.NOTIFY)  # run whatever the instance's status


def run(ctx, job_id: int) -> str:
    """Run one job; returns what happened (for logs and tests)."""
    job = _claim(ctx, job_id)
    if job is None:
        return "skipped"
    if job.kind == JobKind.TIMER:
        return _advance(ctx, job, lambda pspec, state: ctx.engine.fire_timers(pspec, state))
    if job.kind == JobKind.MESSAGE:
        return _publish(ctx, job)
    if job.kind == JobKind.NOTIFY:
        return _call(ctx, job, lambda result: _delete(ctx, job))
    return _call(ctx, job, lambda result: _advance(
        ctx, job, lambda pspec, state: ctx.engine.complete_service_task(
            pspec, state, job.spiff_task_id, result)))


def _call(ctx, job: Job, then) -> str:
    """Run the job's connector; on success hand its result to `then`."""
    try:
        result = run_connector(job.payload["operation"], job.payload["params"], ctx.settings)
    except ConnectorError as exc:
        return _failed(ctx, job, str(exc), exc.retryable)
    return then(result)


def _delete(ctx, job: Job) -> str:
    with ctx.unit() as session:
        current = session.get(Job, job.id)
        if current is None or current.status != JobStatus.RUNNING:
            return "skipped"
        session.delete(current)
    return "done"


def _claim(ctx, job_id: int) -> Job | None:
    now = utcnow()
    lease = now + timedelta(seconds=ctx.settings.job_timeout_seconds)
    active = select(ProcessInstance.id).where(ProcessInstance.status == InstanceStatus.ACTIVE)
    runnable = Job.instance_id.in_(active) | Job.kind.in_(_ANY_INSTANCE)
    with ctx.unit() as session:
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.PENDING,
                              Job.due_at <= now, runnable)
            .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, locked_until=lease)
            .execution_options(synchronize_session=False)).rowcount
        return session.get(Job, job_id) if claimed == 1 else None


def _advance(ctx, job: Job, step) -> str:
    with ctx.unit() as session:
        instance = repo.lock_instance(session, job.instance_id)
        current = session.get(Job, job.id)
        if current is None or current.status != JobStatus.RUNNING:
            return "skipped"
        session.delete(current)
        if instance.status != InstanceStatus.ACTIVE:
            return "skipped"
        definition = repo.definition_of(session, instance)
        try:
            snap = step(process_spec(ctx, definition), instance.state)
        except Conflict:
            return "stale"
        session.flush()
        repo.add_event(session, instance.id, "system", _EVENT[job.kind],
                       element_id=job.element_id, **job.payload)
        jobs = progress.apply(ctx, session, instance, snap, "system")
    ctx.dispatcher.dispatch(jobs)
    return "done"


def _publish(ctx, job: Job) -> str:
    """Deliver a message a process threw; nobody listening is not an error."""
    with ctx.unit() as session:
        current = session.get(Job, job.id)
        if current is None or current.status != JobStatus.RUNNING:
            return "skipped"
        session.delete(current)
        jobs = messages.publish(ctx, session, job.payload["name"], job.payload["payload"],
                                job.payload.get("correlation") or {})
    ctx.dispatcher.dispatch(jobs)
    return "done"


def _failed(ctx, job: Job, error: str, retryable: bool) -> str:
    with ctx.unit() as session:
        current = session.get(Job, job.id)
        if current is None or current.status != JobStatus.RUNNING:
            return "skipped"
        current.last_error = error[:4000]
        if retryable and current.attempts < current.max_attempts:
            delay = ctx.settings.job_backoff_seconds * 2 ** (current.attempts - 1)
            current.status, current.locked_until = JobStatus.PENDING, None
            current.due_at = utcnow() + timedelta(seconds=delay)
            return "retry"
        current.status, current.finished_at = JobStatus.FAILED, utcnow()
        _incident(session, current, error)
        return "failed"


def _incident(session, job: Job, error: str) -> None:
    session.add(Incident(instance_id=job.instance_id, job_id=job.id,
                         spiff_task_id=job.spiff_task_id, element_id=job.element_id,
                         message=error[:4000], status=IncidentStatus.OPEN))
    repo.add_event(session, job.instance_id, "system", "incident_opened", reason="service_call",
                   element_id=job.element_id, attempts=job.attempts, message=error[:500])


def due_timer_ids(ctx, limit: int = 500) -> list[int]:
    """Pending timers that are due, of active instances; on PostgreSQL skipping locked rows."""
    query = (select(Job.id).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
             .where(Job.kind == JobKind.TIMER, Job.status == JobStatus.PENDING,
                    Job.due_at <= utcnow(), ProcessInstance.status == InstanceStatus.ACTIVE)
             .order_by(Job.due_at).limit(limit))
    with ctx.unit() as session:
        return list(session.scalars(query))


def redispatch(ctx, limit: int = 500) -> list[int]:
    """Service calls to (re)dispatch: due retries, and jobs whose lease ran out (lost or stuck)."""
    now = utcnow()
    lease = now + timedelta(seconds=ctx.settings.job_timeout_seconds)
    expired = (Job.locked_until.is_(None)) | (Job.locked_until < now)
    with ctx.unit() as session:
        session.execute(update(Job).where(Job.status == JobStatus.RUNNING, Job.locked_until < now)
                        .values(status=JobStatus.PENDING, locked_until=None)
                        .execution_options(synchronize_session=False))
        ids = list(session.scalars(
            select(Job.id).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
            .where(Job.status == JobStatus.PENDING, Job.due_at <= now, expired,
                   ((Job.kind == JobKind.SERVICE_CALL)
                    & (ProcessInstance.status == InstanceStatus.ACTIVE))
                   | Job.kind.in_(_ANY_INSTANCE))
            .order_by(Job.due_at).limit(limit)))
        if ids:
            session.execute(update(Job).where(Job.id.in_(ids)).values(locked_until=lease)
                            .execution_options(synchronize_session=False))
    return ids
