"""Which outbox jobs run, and who holds them: claims, leases, re-dispatch (see `jobs`).

- A claim is one conditional UPDATE ... RETURNING (pending -> running, one more attempt, a
  lease) for a whole batch; the scan for due timers skips rows another transaction is
  claiming or leasing (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes writers), so
  several tickers split the due timers instead of racing for the same ids. A job whose
  attempts are used up without an outcome (its runner died) is failed with an incident at
  claim time instead of running again.
- A lease without a claim reserves due timers for the workers (`lease_due_timers`) and due
  service calls, messages and notifications for a dispatch (`redispatch`): a lost dispatch
  only delays them until the lease runs out.
- A claim or a lease need not be flushed to disk before PostgreSQL answers
  (`synchronous_commit = off` for that transaction only): after a database crash it may be
  lost, which only means the job is pending again (run twice: harmless). The engine step's
  commit is durable, and flushing it flushes every earlier commit too.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, case, select, text, update

from app.domain.states import IncidentStatus, InstanceStatus, JobKind, JobStatus
from app.persistence import event_log
from app.persistence.models import Incident, Job, ProcessInstance, utcnow

log = logging.getLogger(__name__)

ANY_INSTANCE = (JobKind.MESSAGE, JobKind.NOTIFY)  # run whatever the instance's status
TIMER_LEASE_SECONDS = 30  # timers handed to the workers and not fired by then are due again


def claim(ctx, runnable, limit: int | None = None) -> tuple[list[Job], dict[int, str]]:
    """Take the pending jobs matching `runnable(now)` (with `limit`: the oldest due timers
    among them, see `due_timers`) in one statement; the claimed jobs, and "failed" for each
    job whose attempts were used up (failed with an incident instead)."""
    now = utcnow()
    lease = now + timedelta(seconds=ctx.settings.job_timeout_seconds)
    where = runnable(now)
    if limit is not None:
        pick = _due_timer_scan(where, limit)
        where = (Job.id.in_(select(pick.c.id)), Job.status == JobStatus.PENDING)
    fresh = Job.attempts < Job.max_attempts
    statement = (update(Job).where(*where).values(
        status=case((fresh, JobStatus.RUNNING), else_=JobStatus.FAILED),
        attempts=case((fresh, Job.attempts + 1), else_=Job.attempts),
        locked_until=case((fresh, lease), else_=None),
        finished_at=case((fresh, Job.finished_at), else_=now),
    ).returning(Job).execution_options(synchronize_session=False))
    with ctx.unit() as session:
        no_flush_wait(ctx, session)
        rows = list(session.scalars(statement))
        spent = [job for job in rows if job.status == JobStatus.FAILED]
        for job in spent:
            error = (f"gave up after {job.attempts} attempt(s) of at most {job.max_attempts}: "
                     "the last one never finished (its worker stopped or its lease ran out)")
            if job.last_error:
                error += f"; the error before: {job.last_error}"
            job.last_error = error[:4000]
            incident(session, job, error)
    for job in spent:
        log.error("job %s: %s", job.id, job.last_error)
    return ([job for job in rows if job.status == JobStatus.RUNNING],
            {job.id: "failed" for job in spent})


def due_timers(now) -> tuple:
    """Pending timers that are due, of active instances, not leased to the workers."""
    return (Job.kind == JobKind.TIMER, Job.status == JobStatus.PENDING, Job.due_at <= now,
            ProcessInstance.status == InstanceStatus.ACTIVE,
            Job.locked_until.is_(None) | (Job.locked_until < now))


def lease_due_timers(ctx, limit: int) -> list[int]:
    """Reserve up to `limit` due timers for the workers (who claim and fire them with
    `jobs.run_many`): a lease, not a claim, so a lost dispatch only delays them by
    TIMER_LEASE_SECONDS, after which they are due for any ticker again."""
    now = utcnow()
    pick = _due_timer_scan(due_timers(now), limit)
    with ctx.unit() as session:
        no_flush_wait(ctx, session)
        return list(session.scalars(
            update(Job).where(Job.id.in_(select(pick.c.id)), Job.status == JobStatus.PENDING)
            .values(locked_until=now + timedelta(seconds=TIMER_LEASE_SECONDS))
            .returning(Job.id).execution_options(synchronize_session=False)))


def _due_timer_scan(where: tuple, limit: int):
    """The oldest due timers, skipping rows another transaction is claiming or leasing; a
    CTE, which PostgreSQL runs once (an IN subquery may be re-run per row, and then takes
    more than `limit`)."""
    return (select(Job.id).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
            .where(*where).order_by(Job.due_at, Job.id).limit(limit)
            .with_for_update(of=Job, skip_locked=True).cte("due"))


def no_flush_wait(ctx, session) -> None:
    """This transaction's commit need not wait for the WAL flush (see the module doc)."""
    if ctx.is_postgres:
        session.execute(text("SET LOCAL synchronous_commit = off"))


def held(session, job: Job) -> Job | None:
    """The job's row, locked, while this runner still holds it (running, same attempt)."""
    current = session.get(Job, job.id, with_for_update=True, populate_existing=True)
    if current is None or current.status != JobStatus.RUNNING or \
            current.attempts != job.attempts:
        return None
    return current


def incident(session, job: Job, error: str) -> None:
    session.add(Incident(instance_id=job.instance_id, job_id=job.id,
                         spiff_task_id=job.spiff_task_id, element_id=job.element_id,
                         message=error[:4000], status=IncidentStatus.OPEN))
    event_log.add(session, job.instance_id, "system", "incident_opened", reason=str(job.kind),
                   element_id=job.element_id, attempts=job.attempts, message=error[:500])


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
                   and_(Job.kind == JobKind.SERVICE_CALL,
                        ProcessInstance.status == InstanceStatus.ACTIVE)
                   | Job.kind.in_(ANY_INSTANCE))
            .order_by(Job.due_at).limit(limit)))
        if ids:
            session.execute(update(Job).where(Job.id.in_(ids)).values(locked_until=lease)
                            .execution_options(synchronize_session=False))
    return ids
