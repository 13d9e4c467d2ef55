"""Running outbox jobs: service calls and notifications (through a connector), timers and the
messages processes throw. One job (`run`), a worker's batch (`run_many`), or the ticker's
batch of due timers (`fire_due_timers`); who holds which job is `job_claims`.

- Claim, then act: a batch is claimed in one statement (`job_claims.claim`); every later
  step re-reads the rows under lock and goes on only while it still holds them (running,
  same attempt), so running a job twice is harmless.
- The connectors of a batch are called at the same time (a batch takes as long as its
  slowest call). A service call's connector result is stored on the job (payload["result"])
  before the instance advances: advancing again (after a crash, a suspension, an incident
  retry) replays it and never calls the connector twice. The results of a batch are one
  write, not flushed to disk before PostgreSQL answers (see `job_claims`).
- The engine steps of a batch (timers, completed service calls) run in one transaction, one
  instance after the other under their row locks, so the batch costs one durable commit. If
  that transaction fails, each job is advanced again on its own, so one bad instance never
  holds back the others; instances another transaction holds are advanced on their own too,
  after waiting for their lock.
- A job never stays running after a failure: a retryable connector error (or a lost database
  connection) goes back to pending with a doubling backoff while attempts remain; anything
  else, or the last attempt, fails the job and opens an incident an operator retries.
- An instance that is not active when its service call or timer completes keeps the job:
  back to pending, lease cleared, the attempt given back. `instances.resume` re-dispatches its
  service calls; the ticker fires its timers once it is active again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.domain.errors import Conflict, DomainError, NotFound
from app.domain.states import InstanceStatus, JobKind, JobStatus
from app.persistence import event_log, instance_rows, task_rows
from app.persistence.models import Job, ProcessInstance, utcnow
from workers.connectors import ConnectorError, run_connector

from . import messages, progress
from .instances import definition_of, process_spec
from .job_claims import ANY_INSTANCE, claim, due_timers, held, incident, no_flush_wait
from .job_claims import lease_due_timers as lease_due_timers  # the ticker's API too
from .job_claims import redispatch as redispatch

log = logging.getLogger(__name__)

_EVENT = {JobKind.TIMER: "timer_fired", JobKind.SERVICE_CALL: "service_task_completed"}
_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)  # the database, not the job
RESULT = "result"  # payload key of a service call's stored connector result
TIMER_BATCH = 25  # timers one ticker claims and fires per transaction
_CALLS = (JobKind.SERVICE_CALL, JobKind.NOTIFY)  # the kinds that call a connector
_FLAGGED = (JobKind.TIMER, JobKind.SERVICE_CALL)  # ProcessInstance.has_timers, .has_service_calls
CONNECTOR_THREADS = 8  # connector calls of one batch made at the same time
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@dataclass
class _Step:
    """A claimed job whose engine step is ready to run: `advance(pspec, state) -> Snapshot`."""

    job: Job
    advance: Callable[[Any, bytes], Any]
    result: Any = None
    store: bool = False  # a fresh connector result, to keep on the job before advancing


def run(ctx, job_id: int) -> str:
    """Run one job; returns what happened (for logs and tests): "done", "retry", "failed",
    "suspended" (kept for when the instance resumes), "stale" or "skipped"."""
    return run_many(ctx, [job_id])[0]


def run_many(ctx, job_ids: list[int]) -> list[str]:
    """Run several jobs together (one claim, one result write, one engine transaction);
    one outcome per id, in order."""
    ids = list(dict.fromkeys(job_ids))
    active = exists().where(ProcessInstance.id == Job.instance_id,
                            ProcessInstance.status == InstanceStatus.ACTIVE)
    claimed, outcomes = claim(ctx, lambda now: (
        Job.id.in_(ids), Job.status == JobStatus.PENDING, Job.due_at <= now,
        active | Job.kind.in_(ANY_INSTANCE)))
    outcomes.update(_run_claimed(ctx, claimed))
    return [outcomes.get(job_id, "skipped") for job_id in job_ids]


def fire_due_timers(ctx, limit: int = TIMER_BATCH) -> list[str]:
    """Claim up to `limit` due timers of active instances, oldest first, skipping those
    another ticker is claiming or the workers were handed, and fire them; their outcomes
    (fewer than `limit`: none left due)."""
    claimed, outcomes = claim(ctx, due_timers, limit=limit)
    outcomes.update(_run_claimed(ctx, claimed))
    return list(outcomes.values())


def _run_claimed(ctx, claimed: list[Job]) -> dict[int, str]:
    outcomes, steps = {}, []
    calls = _call_connectors(ctx, [job for job in claimed if job.kind in _CALLS
                                   and RESULT not in job.payload])
    for job in claimed:
        try:
            prepared = _prepare(ctx, job, calls.get(job.id))
        except Exception as exc:  # never leave the job running until its lease runs out
            outcomes[job.id] = _unexpected(ctx, job, exc)
            continue
        if isinstance(prepared, str):
            outcomes[job.id] = prepared
        else:
            steps.append(prepared)
    steps = _store_results(ctx, steps, outcomes)
    outcomes.update(_advance(ctx, steps))
    return outcomes


def _unexpected(ctx, job: Job, exc: Exception) -> str:
    log.exception("%s job %s failed unexpectedly", job.kind, job.id)
    return _failed(ctx, job, f"{job.kind} job failed unexpectedly: {_describe(exc)}",
                   isinstance(exc, _TRANSIENT))


def _call_connectors(ctx, calls: list[Job]) -> dict[int, tuple[bool, Any]]:
    """Run the connectors of these jobs, at the same time when there are several (a batch
    takes as long as its slowest call); job id -> (True, result) or (False, exception)."""
    def call(job: Job) -> tuple[bool, Any]:
        try:
            return True, run_connector(job.payload.get("operation"), job.payload.get("params"),
                                       ctx.settings)
        except Exception as exc:
            return False, exc
    if len(calls) <= 1:
        return {job.id: call(job) for job in calls}
    return dict(zip((job.id for job in calls), _pool().map(call, calls), strict=True))


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(CONNECTOR_THREADS, thread_name_prefix="ccf-connector")
        return _POOL


def _prepare(ctx, job: Job, call: tuple[bool, Any] | None) -> _Step | str:
    """What comes before the engine step, given the job's connector call (None: the result
    is stored, or the job has no connector). Messages and notifications are done here (an
    outcome)."""
    if job.kind == JobKind.TIMER:
        return _Step(job, lambda pspec, state: ctx.engine.fire_timers(pspec, state))
    if job.kind == JobKind.MESSAGE:
        return _publish(ctx, job)
    if call is None:
        result = job.payload[RESULT]
    else:
        ok, result = call
        if isinstance(result, ConnectorError):
            return _failed(ctx, job, str(result), result.retryable)
        if not ok:
            raise result
    if job.kind == JobKind.NOTIFY:
        return _delete(ctx, job)
    return _Step(job, lambda pspec, state: ctx.engine.complete_service_task(
        pspec, state, job.spiff_task_id, result), result, store=call is not None)


def _store_results(ctx, steps: list[_Step], outcomes: dict[int, str]) -> list[_Step]:
    """Keep the fresh connector results on their jobs, in one transaction before advancing
    (a job this runner no longer holds is left alone: its step will find it so)."""
    fresh = [step for step in steps if step.store]
    if not fresh:
        return steps
    table = Job.__table__
    write = (update(table).where(table.c.id == bindparam("job_id"),
                                 table.c.status == JobStatus.RUNNING,
                                 table.c.attempts == bindparam("attempt"))
             .values(payload=bindparam("new_payload")))
    try:
        with ctx.unit() as session:
            no_flush_wait(ctx, session)
            session.execute(write, [
                {"job_id": s.job.id, "attempt": s.job.attempts,
                 "new_payload": {**s.job.payload, RESULT: s.result}} for s in fresh])
    except Exception as exc:
        for step in fresh:
            outcomes[step.job.id] = _unexpected(ctx, step.job, exc)
        return [step for step in steps if not step.store]
    for step in fresh:
        step.job.payload = {**step.job.payload, RESULT: step.result}
    return steps


def _delete(ctx, job: Job) -> str:
    with ctx.unit() as session:
        current = held(session, job)
        if current is None:
            return "skipped"
        session.delete(current)
    return "done"


def _advance(ctx, steps: list[_Step]) -> dict[int, str]:
    """Run the engine steps of timers and completed service calls on their instances, in one
    transaction; then dispatch the jobs they created."""
    if not steps:
        return {}
    try:
        with ctx.unit() as session:
            outcomes, created, busy = _advance_in(ctx, session, steps)
    except Exception as exc:
        if len(steps) > 1:
            log.warning("advancing %d instances together failed (%s); one at a time",
                        len(steps), _describe(exc))
            return {k: v for step in steps for k, v in _advance(ctx, [step]).items()}
        job = steps[0].job
        log.exception("advancing instance %s for job %s failed", job.instance_id, job.id)
        done = " after its service call succeeded" if RESULT in job.payload else ""
        return {job.id: _failed(ctx, job, f"advancing the instance{done} failed: "
                                f"{_describe(exc)}", isinstance(exc, _TRANSIENT))}
    ctx.dispatcher.dispatch(created)
    for step in busy:  # another transaction held its instance: wait for it, on its own
        outcomes.update(_advance(ctx, [step]))
    return outcomes


def _advance_in(ctx, session, steps: list[_Step]):
    """Lock the instances (in id order; with several, those another transaction holds are
    skipped and returned as `busy`) and the jobs; drop the jobs this runner still holds in
    one statement (a suspended instance keeps its own); then step each instance."""
    instances = instance_rows.lock_many(session, {step.job.instance_id for step in steps},
                                        skip_locked=len(steps) > 1)
    busy = [step for step in steps if step.job.instance_id not in instances]
    mine = sorted((s for s in steps if s.job.instance_id in instances),
                  key=lambda s: (s.job.instance_id, s.job.id))
    held = {job.id: job for job in session.scalars(
        select(Job).where(Job.id.in_([s.job.id for s in mine])).with_for_update()
        .execution_options(populate_existing=True))}
    outcomes, ready, dropped, timed = {}, [], [], set()
    for step in mine:
        job, current = step.job, held.get(step.job.id)
        instance = instances[job.instance_id]
        if current is None or current.status != JobStatus.RUNNING or \
                current.attempts != job.attempts:
            outcomes[job.id] = "skipped"
        elif instance.status != InstanceStatus.ACTIVE:
            outcomes[job.id] = _keep_for_later(session, instance, current)
        elif job.kind == JobKind.TIMER and instance.id in timed:
            dropped.append(current)  # the instance's first timer step fires or re-arms it
            outcomes[job.id] = "skipped"
        else:
            dropped.append(current)
            if job.kind == JobKind.TIMER:
                timed.add(instance.id)
            ready.append(step)
    if dropped:
        session.execute(delete(Job).where(Job.id.in_([job.id for job in dropped]))
                        .execution_options(synchronize_session=False))
        for job in dropped:
            session.expunge(job)
    stepped, created = _step_all(ctx, session, instances, ready)
    return outcomes | stepped, created, busy


def _step_all(ctx, session, instances: dict, ready: list[_Step]):
    """Run each engine step and bring the instance's projections in line. Read first, for
    all the instances at once and under their locks: their open tasks (for each one's first
    step) and which of them still have timers or service calls, so that a step does not
    look for rows that are not there."""
    ids = {step.job.instance_id for step in ready}
    open_tasks, waiting = defaultdict(list), set()
    if ids:
        for task in task_rows.open_of_many(session, ids):
            open_tasks[task.instance_id].append(task)
        waiting = {(row.instance_id, row.kind) for row in session.execute(
            select(Job.instance_id, Job.kind).where(
                Job.instance_id.in_(ids), Job.kind.in_(_FLAGGED),
                Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING))).distinct())}
    for instance_id in ids:
        instance = instances[instance_id]
        instance.has_timers &= (instance_id, JobKind.TIMER) in waiting
        instance.has_service_calls &= (instance_id, JobKind.SERVICE_CALL) in waiting
    outcomes, created, stepped = {}, [], set()
    for step in ready:
        job, instance = step.job, instances[step.job.instance_id]
        if instance.status != InstanceStatus.ACTIVE:  # an earlier step ended it
            outcomes[job.id] = "skipped"
            continue
        try:
            snap = step.advance(process_spec(ctx, definition_of(ctx, session, instance)),
                                instance.state)
        except (Conflict, NotFound):  # the task already moved on: the job is obsolete
            outcomes[job.id] = "stale"
            continue
        detail = {k: v for k, v in job.payload.items() if k != RESULT}
        event_log.add(session, instance.id, "system", _EVENT[job.kind],
                      element_id=job.element_id, **detail)
        known = None if instance.id in stepped else open_tasks[instance.id]
        stepped.add(instance.id)
        created += progress.apply(ctx, session, instance, snap, "system", open_tasks=known)
        outcomes[job.id] = "done"
    return outcomes, created


def _keep_for_later(session, instance, job: Job) -> str:
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
            current = held(session, job)
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
        current = held(session, job)
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
        incident(session, current, error)
        return "failed"


def _describe(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
