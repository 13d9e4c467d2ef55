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


def apply(ctx: Context, session: Session, instance: ProcessInstance, snap: Snapshot,
          actor: str | None, cause: dict | None = None) -> list[int]:
    """Store `snap` on `instance`; return the ids of new jobs to dispatch after commit.

    `cause` says what moved the instance (a completed task with its data, a message...);
    the process's listeners (e.g. the support-case projection) receive it."""
    instance.state = snap.state
    _sync_user_tasks(session, instance, snap)
    _sync_timers(session, instance, snap)
    _sync_subscriptions(session, instance, snap)
    _open_incidents(session, instance, snap, actor)
    jobs = (_add_service_calls(ctx, session, instance, snap)
            + _add_messages(ctx, session, instance, snap))
    if snap.completed:
        finish(session, instance, InstanceStatus.COMPLETED, actor)
    session.flush()
    ids = [job.id for job in jobs]
    for listener in ctx.listeners.get(instance.process_key, ()):
        ids += listener(session, instance, snap, actor, cause or {}) or []
    return ids


def _sync_user_tasks(session: Session, instance: ProcessInstance, snap: Snapshot) -> None:
    ready = {view.spiff_task_id: view for view in snap.user_tasks}
    stale = []
    for task in repo.open_tasks(session, instance.id):
        if ready.pop(task.spiff_task_id, None) is None:
            task.status, task.completed_at = TaskStatus.CANCELLED, utcnow()
            stale.append(task.id)
    repo.drop_task_groups(session, stale)
    for view in ready.values():
        _add_task(session, instance, view)


def _add_task(session: Session, instance: ProcessInstance, view) -> None:
    task = Task(
        instance_id=instance.id, spiff_task_id=view.spiff_task_id, name=view.element_id,
        title=view.title, process_key=instance.process_key,
        candidate_groups=list(view.candidate_groups), priority=view.priority or 3,
        due_at=view.due_at, form_key=view.form_key, ui_form_key=view.ui_form_key,
        form_enums=view.form_enums, assignee=view.assignee, instructions=view.instructions,
        status=TaskStatus.OPEN,
        created_at=utcnow(),
    )
    session.add(task)
    session.flush()
    session.add_all(TaskGroup(task_id=task.id, group_name=g) for g in view.candidate_groups)


def _sync_timers(session: Session, instance: ProcessInstance, snap: Snapshot) -> None:
    waiting = {(t.spiff_task_id, t.due_at): t for t in snap.timers}
    for job in repo.pending_jobs(session, instance.id, JobKind.TIMER):
        if waiting.pop((job.spiff_task_id, job.due_at), None) is None:
            session.delete(job)
    for timer in waiting.values():
        session.add(Job(
            instance_id=instance.id, kind=JobKind.TIMER, spiff_task_id=timer.spiff_task_id,
            element_id=timer.element_id, status=JobStatus.PENDING, due_at=timer.due_at,
            max_attempts=1,
        ))


def _sync_subscriptions(session: Session, instance: ProcessInstance, snap: Snapshot) -> None:
    wanted = {(m.name, correlation_key(m.correlation)) for m in snap.messages}
    for sub in repo.subscriptions(session, instance.id):
        key = (sub.message_name, sub.correlation_key)
        if key in wanted:
            wanted.discard(key)
        else:
            session.delete(sub)
    session.add_all(
        MessageSubscription(instance_id=instance.id, message_name=name, correlation_key=key)
        for name, key in wanted
    )


def correlation_key(correlation: dict) -> str:
    """Canonical JSON of correlation values: the indexed lookup key of a subscription."""
    return json.dumps(correlation, sort_keys=True, separators=(",", ":"), default=str)


def _open_incidents(session: Session, instance: ProcessInstance, snap: Snapshot,
                    actor: str | None) -> None:
    known = {i.spiff_task_id for i in repo.open_incidents(session, instance.id)}
    for error in snap.errors:
        if error.spiff_task_id in known:
            continue
        session.add(Incident(
            instance_id=instance.id, spiff_task_id=error.spiff_task_id,
            element_id=error.element_id, message=error.message, status=IncidentStatus.OPEN,
        ))
        kind = "sandbox_violation" if error.sandbox_violation else "script_error"
        repo.add_event(session, instance.id, actor, "incident_opened", reason=kind,
                       element_id=error.element_id, message=error.message)


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
    """End an instance: close its tasks, drop its waits."""
    instance.status, instance.ended_at = status, utcnow()
    closing = repo.open_tasks(session, instance.id)
    for task in closing:
        task.status, task.completed_at = TaskStatus.CANCELLED, utcnow()
    repo.drop_task_groups(session, [t.id for t in closing])
    for kind in (JobKind.TIMER, JobKind.SERVICE_CALL):
        for job in repo.pending_jobs(session, instance.id, kind):
            session.delete(job)
    for sub in repo.subscriptions(session, instance.id):
        session.delete(sub)
    repo.add_event(session, instance.id, actor, f"instance_{status.value}")
