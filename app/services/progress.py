"""After every engine step: store the state and bring the projections in line with it.

One function per projection: user tasks (inbox), timers and service calls (jobs), message
subscriptions, incidents, and the instance's own status. The caller owns the transaction and
dispatches the returned job ids after commit.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from app.domain.states import IncidentStatus, InstanceStatus, JobKind, JobStatus, TaskStatus
from app.engine import Snapshot
from app.persistence import repo
from app.persistence.models import (
    Incident,
    Job,
    MessageSubscription,
    ProcessInstance,
    Task,
    TaskGroup,
    utcnow,
)

from .context import Context

_KNOWN = "progress.open"  # session.info key: instance id -> (open tasks, open incidents)


def apply(ctx: Context, session: Session, instance: ProcessInstance, snap: Snapshot,
          actor: str | None, cause: dict | None = None, *, done: Task | None = None,
          open_tasks: list[Task] | None = None, new: bool = False) -> list[int]:
    """Store `snap` on `instance`; return the ids of new jobs to dispatch after commit.

    `cause` says what moved the instance (a completed task with its data, a message...);
    the process's listeners (e.g. the support-case projection) receive it. `done` is the
    task this step completed (its groups are dropped with the others'); `open_tasks` are the
    instance's open tasks when the caller read them under the instance lock; `new` says the
    instance was created in this step, so it has no rows to compare with yet.

    Round trips: the projections that may hold rows are read first (open tasks; timers and
    subscriptions only when the instance has some, incidents only when the step failed),
    then every change is written in one flush, rows of a table in one batch."""
    instance.state = snap.state
    with session.no_autoflush:
        if open_tasks is None:
            open_tasks = [] if new else repo.open_tasks(session, instance.id)
        timers = repo.pending_jobs(session, instance.id, JobKind.TIMER) \
            if instance.has_timers else []
        subs = repo.subscriptions(session, instance.id) if instance.has_subscriptions else []
        incidents = repo.open_incidents(session, instance.id) \
            if snap.errors and not new else []
    _sync_timers(session, instance, snap, timers)
    _sync_subscriptions(session, instance, snap, subs)
    incidents += _open_incidents(session, instance, snap, actor, incidents)
    jobs = (_add_service_calls(ctx, session, instance, snap)
            + _add_messages(ctx, session, instance, snap))
    open_now, closing, views = _diff_user_tasks(snap, open_tasks, done)
    if snap.completed:  # a finished workflow has no ready task: nothing to add
        _end(session, instance, InstanceStatus.COMPLETED, actor, open_now, closing)
        open_now, views = [], []
    else:
        repo.drop_task_groups(session, closing)  # this flushes the changes made so far
    open_now += _add_tasks(session, instance, views)
    session.flush()
    known = session.info.setdefault(_KNOWN, {})
    if new or snap.errors:
        known[instance.id] = (open_now, incidents)
    else:
        known.pop(instance.id, None)
    ids = [job.id for job in jobs]
    for listener in ctx.listeners.get(instance.process_key, ()):
        ids += listener(session, instance, snap, actor, cause or {}) or []
    return ids


def known_open(session: Session, instance_id: int) -> tuple[list[Task], list[Incident]] | None:
    """The open tasks and incidents of an instance, when this unit of work's last step of it
    already knows them (a new instance, a step that read its incidents); else None."""
    return session.info.get(_KNOWN, {}).get(instance_id)


def _diff_user_tasks(snap: Snapshot, tasks: list[Task], done: Task | None):
    """Cancel the open tasks the engine no longer has. Returns the tasks still open, the ids
    of the closed ones (their groups go) and the views of the tasks to add."""
    ready = {view.spiff_task_id: view for view in snap.user_tasks}
    closing = [done.id] if done is not None else []
    still_open = []
    for task in tasks:
        if task.status != TaskStatus.OPEN:  # closed earlier in this step (e.g. `done`)
            continue
        if ready.pop(task.spiff_task_id, None) is None:
            task.status, task.completed_at = TaskStatus.CANCELLED, utcnow()
            closing.append(task.id)
        else:
            still_open.append(task)
    return still_open, closing, list(ready.values())


def _add_tasks(session: Session, instance: ProcessInstance, views: list) -> list[Task]:
    added = [_new_task(instance, view) for view in views]
    if added:
        session.add_all(added)
        session.flush()  # their ids, for the group rows (one batched INSERT)
        session.add_all(TaskGroup(task_id=task.id, group_name=group)
                        for task, view in zip(added, views, strict=True)
                        for group in view.candidate_groups)
    return added


def _new_task(instance: ProcessInstance, view) -> Task:
    return Task(
        instance_id=instance.id, spiff_task_id=view.spiff_task_id, name=view.element_id,
        title=view.title, process_key=instance.process_key,
        candidate_groups=list(view.candidate_groups), priority=view.priority or 3,
        due_at=view.due_at, form_key=view.form_key, ui_form_key=view.ui_form_key,
        form_enums=view.form_enums, assignee=view.assignee, instructions=view.instructions,
        status=TaskStatus.OPEN,
        created_at=utcnow(),
    )


def _sync_timers(session: Session, instance: ProcessInstance, snap: Snapshot,
                 pending: list[Job]) -> None:
    waiting = {(t.spiff_task_id, t.due_at): t for t in snap.timers}
    for job in pending:
        if waiting.pop((job.spiff_task_id, job.due_at), None) is None:
            session.delete(job)
    session.add_all(Job(
        instance_id=instance.id, kind=JobKind.TIMER, spiff_task_id=timer.spiff_task_id,
        element_id=timer.element_id, status=JobStatus.PENDING, due_at=timer.due_at,
        max_attempts=1,
    ) for timer in waiting.values())
    instance.has_timers = bool(snap.timers)


def _sync_subscriptions(session: Session, instance: ProcessInstance, snap: Snapshot,
                        subs: list[MessageSubscription]) -> None:
    wanted = {(m.name, correlation_key(m.correlation)) for m in snap.messages}
    for sub in subs:
        key = (sub.message_name, sub.correlation_key)
        if key in wanted:
            wanted.discard(key)
        else:
            session.delete(sub)
    session.add_all(
        MessageSubscription(instance_id=instance.id, message_name=name, correlation_key=key)
        for name, key in wanted
    )
    instance.has_subscriptions = bool(snap.messages)


def correlation_key(correlation: dict) -> str:
    """Canonical JSON of correlation values: the indexed lookup key of a subscription."""
    return json.dumps(correlation, sort_keys=True, separators=(",", ":"), default=str)


def _open_incidents(session: Session, instance: ProcessInstance, snap: Snapshot,
                    actor: str | None, known: list[Incident]) -> list[Incident]:
    """An incident for each error of the step not already open; the new incidents."""
    seen = {i.spiff_task_id for i in known}
    added = []
    for error in snap.errors:
        if error.spiff_task_id in seen:
            continue
        added.append(Incident(
            instance_id=instance.id, spiff_task_id=error.spiff_task_id,
            element_id=error.element_id, message=error.message, status=IncidentStatus.OPEN,
        ))
        kind = "sandbox_violation" if error.sandbox_violation else "script_error"
        repo.add_event(session, instance.id, actor, "incident_opened", reason=kind,
                       element_id=error.element_id, message=error.message)
    session.add_all(added)
    return added


def _add_service_calls(ctx: Context, session: Session, instance: ProcessInstance,
                       snap: Snapshot) -> list[Job]:
    retries = ctx.settings.job_retries
    lease = utcnow() + timedelta(seconds=ctx.settings.job_timeout_seconds)
    jobs = [
        Job(instance_id=instance.id, kind=JobKind.SERVICE_CALL, spiff_task_id=call.spiff_task_id,
            element_id=call.element_id,
            payload={"operation": call.operation, "params": call.params},
            status=JobStatus.PENDING, due_at=utcnow(), locked_until=lease,
            max_attempts=1 + (call.retries if call.retries is not None else retries))
        for call in snap.service_calls
    ]
    session.add_all(jobs)
    instance.has_service_calls = instance.has_service_calls or bool(jobs)
    return jobs


def _add_messages(ctx: Context, session: Session, instance: ProcessInstance,
                  snap: Snapshot) -> list[Job]:
    """Messages the process throws to other processes travel as outbox jobs."""
    lease = utcnow() + timedelta(seconds=ctx.settings.job_timeout_seconds)
    jobs = [
        Job(instance_id=instance.id, kind=JobKind.MESSAGE, spiff_task_id="-",
            element_id=message.name, payload={"name": message.name, "payload": message.payload,
                                              "correlation": message.correlation},
            status=JobStatus.PENDING, due_at=utcnow(), locked_until=lease, max_attempts=1)
        for message in snap.outgoing
    ]
    session.add_all(jobs)
    return jobs


def finish(session: Session, instance: ProcessInstance, status: InstanceStatus,
           actor: str | None) -> None:
    """End an instance outside an engine step (cancel): close its tasks, drop its waits."""
    with session.no_autoflush:
        closing = repo.open_tasks(session, instance.id)
    _end(session, instance, status, actor, closing, [])


def _end(session: Session, instance: ProcessInstance, status: InstanceStatus,
         actor: str | None, open_tasks: list[Task], closed: list[int]) -> None:
    """Close the open tasks (and drop the groups of those in `closed` too), drop the pending
    timers, service calls and subscriptions the instance may have, in a few statements."""
    instance.status, instance.ended_at = status, utcnow()
    for task in open_tasks:
        task.status, task.completed_at = TaskStatus.CANCELLED, utcnow()
    repo.add_event(session, instance.id, actor, f"instance_{status.value}")
    repo.drop_task_groups(session, closed + [t.id for t in open_tasks])
    kinds = [kind for kind, waiting in ((JobKind.TIMER, instance.has_timers),
                                        (JobKind.SERVICE_CALL, instance.has_service_calls))
             if waiting]
    repo.delete_pending_jobs(session, instance.id, kinds)
    if instance.has_subscriptions:
        repo.delete_subscriptions(session, instance.id)
    instance.has_timers = instance.has_subscriptions = instance.has_service_calls = False
