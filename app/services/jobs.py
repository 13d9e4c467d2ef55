"""Running outbox jobs: service calls and notifications (through a connector), timers and the
messages processes throw.

- Claim: a conditional UPDATE (pending -> running, one more attempt, a lease) gives a job to
  exactly one runner; every later step re-reads the row under lock and goes on only while it
  still holds it (running, same attempt), so running a job twice is harmless.
- A job never stays running after a failure: a retryable connector error (or a lost database
  connection) goes back to pending with a doubling backoff while attempts remain; anything
  else, or the last attempt, fails the job and opens an incident an operator retries. A job
  whose attempts are used up without an outcome (its runner died) is refused at claim time,
  with an incident, instead of running again.
- A service call's connector result is stored on the job (payload["result"]) before the
  instance advances: advancing again (after a crash, a suspension, an incident retry) replays
  it and never calls the connector twice.
- An instance that is not active when its service call or timer completes keeps the job:
  back to pending, lease cleared, the attempt given back. `instances.resume` re-dispatches its
  service calls; the ticker fires its timers once it is active again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.domain.errors import Conflict, DomainError, NotFound
from app.domain.states import IncidentStatus, InstanceStatus, JobKind, JobStatus
from app.persistence import repo
from app.persistence.models import Incident, Job, ProcessInstance, utcnow
from workers.connectors import ConnectorError, run_connector

from . import messages, progress
from .instances import definition_of, process_spec

log = logging.getLogger(__name__)

_EVENT = {JobKind.TIMER: "timer_fired", JobKind.SERVICE_CALL: "service_task_completed"}
_ANY_INSTANCE = (JobKind.MESSAGE, JobKind.NOTIFY)  # run whatever the instance's status
_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)  # the database, not the job
RESULT = "result"  # payload key of a service call's stored connector result


def run(ctx, job_id: int) -> str:
    """Run one job; returns what happened (for logs and tests): "done", "retry", "failed",
    "suspended" (kept for when the instance resumes), "stale" or "skipped"."""
    job, outcome = _claim(ctx, job_id)
    if job is None:
        return outcome
    try:
        return _run_claimed(ctx, job)
    except Exception as exc:  # never leave the job running until its lease runs out
        log.exception("%s job %s failed unexpectedly", job.kind, job.id)
        return _failed(ctx, job, f"{job.kind} job failed unexpectedly: {_describe(exc)}",
                       isinstance(exc, _TRANSIENT))


def _run_claimed(ctx, job: Job) -> str:
    if job.kind == JobKind.TIMER:
        return _advance(ctx, job, lambda pspec, state: ctx.engine.fire_timers(pspec, state))
    if job.kind == JobKind.MESSAGE:
        return _publish(ctx, job)
    if job.kind == JobKind.NOTIFY:
        return _call(ctx, job, lambda result: _delete(ctx, job))
    return _call(ctx, job, lambda result: _complete_service_task(ctx, job, result))


def _call(ctx, job: Job, then) -> str:
    """Run the job's connector (unless its result is stored); hand the result to `then`."""
    if RESULT in job.payload:
        return then(job.payload[RESULT])
    try:
        result = run_connector(job.payload.get("operation"), job.payload.get("params"),
                               ctx.settings)
    except ConnectorError as exc:
        return _failed(ctx, job, str(exc), exc.retryable)
    return then(result)


def _complete_service_task(ctx, job: Job, result) -> str:
    if RESULT not in job.payload and not _store_result(ctx, job, result):
        return "skipped"
    return _advance(ctx, job, lambda pspec, state: ctx.engine.complete_service_task(
        pspec, state, job.spiff_task_id, result))


def _store_result(ctx, job: Job, result) -> bool:
    """Keep the connector's result on the job, in its own transaction, before advancing."""
    with ctx.unit() as session:
        current = _held(session, job)
        if current is None:
            return False
        current.payload = {**current.payload, RESULT: result}
    job.payload = {**job.payload, RESULT: result}
    return True


def _delete(ctx, job: Job) -> str:
    with ctx.unit() as session:
        current = _held(session, job)
        if current is None:
            return "skipped"
        session.delete(current)
    return "done"


def _held(session, job: Job) -> Job | None:
    """The job's row, locked, while this runner still holds it (running, same attempt)."""
    current = session.get(Job, job.id, with_for_update=True, populate_existing=True)
    if current is None or current.status != JobStatus.RUNNING or \
            current.attempts != job.attempts:
        return None
    return current


def _claim(ctx, job_id: int) -> tuple[Job | None, str]:
    """Take a pending, due job of an active instance (messages and notifications: of any
    instance). A job whose attempts are used up is failed with an incident instead."""
    now = utcnow()
    lease = now + timedelta(seconds=ctx.settings.job_timeout_seconds)
    active = select(ProcessInstance.id).where(ProcessInstance.status == InstanceStatus.ACTIVE)
    runnable = (Job.id == job_id, Job.status == JobStatus.PENDING, Job.due_at <= now,
                Job.instance_id.in_(active) | Job.kind.in_(_ANY_INSTANCE))
    with ctx.unit() as session:
        claimed = session.execute(
            update(Job).where(*runnable, Job.attempts < Job.max_attempts)
            .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, locked_until=lease)
            .execution_options(synchronize_session=False)).rowcount
        if claimed == 1:
            return session.get(Job, job_id), "claimed"
        spent = session.execute(
            update(Job).where(*runnable, Job.attempts >= Job.max_attempts)
            .values(status=JobStatus.FAILED, locked_until=None, finished_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if spent != 1:
            return None, "skipped"
        job = session.get(Job, job_id)
        error = (f"gave up after {job.attempts} attempt(s) of at most {job.max_attempts}: "
                 "the last one never finished (its worker stopped or its lease ran out)")
        if job.last_error:
            error += f"; the error before: {job.last_error}"
        job.last_error = error[:4000]
        _incident(session, job, error)
    log.error("job %s: %s", job_id, error)
    return None, "failed"


def _advance(ctx, job: Job, step) -> str:
    """Run the engine step of a timer or a completed service call on the instance."""
    try:
        with ctx.unit() as session:
            instance = repo.lock_instance(session, job.instance_id)
            current = _held(session, job)
            if current is None:
                return "skipped"
            if instance.status != InstanceStatus.ACTIVE:
                return _keep_for_later(session, instance, current)
            definition = definition_of(ctx, session, instance)
            try:
                snap = step(process_spec(ctx, definition), instance.state)
            except (Conflict, NotFound):  # the task already moved on: the job is obsolete
                session.delete(current)
                return "stale"
            session.delete(current)
            session.flush()
            detail = {k: v for k, v in job.payload.items() if k != RESULT}
            repo.add_event(session, instance.id, "system", _EVENT[job.kind],
                           element_id=job.element_id, **detail)
            jobs = progress.apply(ctx, session, instance, snap, "system")
    except Exception as exc:
        log.exception("advancing instance %s for job %s failed", job.instance_id, job.id)
        done = " after its service call succeeded" if RESULT in job.payload else ""
        return _failed(ctx, job, f"advancing the instance{done} failed: {_describe(exc)}",
                       isinstance(exc, _TRANSIENT))
    ctx.dispatcher.dispatch(jobs)
    return "done"


def _keep_for_later(session, instance: ProcessInstance, job: Job) -> str:
    """The instance stopped being active while the job ran: a finished instance drops it; a
    suspended one keeps it pending (with its stored result) for when it resumes."""
    if InstanceStatus(instance.status).finished:
        session.delete(job)
        return "skipped"
    job.status, job.locked_until = JobStatus.PENDING, None
    job.attempts = max(0, job.attempts - 1)  # this attempt did not fail: give it back
    return "suspended"


def _publish(ctx, job: Job) -> str:
    """Deliver a message a process threw; nobody listening is not an error, waiting
    instances that are all suspended are (an incident, retried once they resume)."""
    name = job.payload.get("name")
    try:
        with ctx.unit() as session:
            current = _held(session, job)
            if current is None:
                return "skipped"
            session.delete(current)
            jobs = messages.publish(ctx, session, name, job.payload.get("payload") or {},
                                    job.payload.get("correlation") or {})
    except Exception as exc:
        if not isinstance(exc, DomainError):
            log.exception("delivering message %r of job %s failed", name, job.id)
        return _failed(ctx, job, f"delivering message '{name}' failed: {_describe(exc)}",
                       isinstance(exc, _TRANSIENT))
    ctx.dispatcher.dispatch(jobs)
    return "done"


def _failed(ctx, job: Job, error: str, retryable: bool) -> str:
    """Back to pending with backoff while retryable attempts remain; else failed + incident."""
    with ctx.unit() as session:
        current = _held(session, job)
        if current is None:
            return "skipped"
        current.last_error = error[:4000]
        if retryable and current.attempts < current.max_attempts:
            delay = ctx.settings.job_backoff_seconds * 2 ** (current.attempts - 1)
            current.status, current.locked_until = JobStatus.PENDING, None
            current.due_at = utcnow() + timedelta(seconds=delay)
            return "retry"
        current.status, current.finished_at = JobStatus.FAILED, utcnow()
        current.locked_until = None
        _incident(session, current, error)
        return "failed"


def _incident(session, job: Job, error: str) -> None:
    session.add(Incident(instance_id=job.instance_id, job_id=job.id,
                         spiff_task_id=job.spiff_task_id, element_id=job.element_id,
                         message=error[:4000], status=IncidentStatus.OPEN))
    repo.add_event(session, job.instance_id, "system", "incident_opened", reason=str(job.kind),
                   element_id=job.element_id, attempts=job.attempts, message=error[:500])


def _describe(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def due_timer_ids(ctx, limit: int = 500) -> list[int]:
    """Pending timers that are due, of active instances, oldest first.

    Nothing is locked or reserved here: several tickers may list the same ids. Each id is
    then claimed by `run` with one conditional UPDATE (pending -> running), which exactly one
    ticker wins; the others get "skipped". A timer therefore never fires twice."""
    query = (select(Job.id).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
             .where(Job.kind == JobKind.TIMER, Job.status == JobStatus.PENDING,
                    Job.due_at <= utcnow(), ProcessInstance.status == InstanceStatus.ACTIVE)
             .order_by(Job.due_at).limit(limit))
    with ctx.unit() as session:
        return list(session.scalars(query))


def redispatch(ctx, limit: int = 500) -> list[int]:
    """Jobs to (re)dispatch to the workers: service calls of active instances, thrown messages
    and notifications, that are due (new, or a retry) and not leased (their lease ran out:
    the dispatch was lost or the worker died). Each gets a new lease so the next pass does
    not send it again."""
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
