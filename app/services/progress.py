"""After every engine step: store the state and bring the projections in line with it.

One function per projection: user tasks (inbox), timers and service calls (jobs), message
subscriptions, incidents, and the instance's own status. The caller owns the transaction and
dispatches the returned job ids after commit.

Round trips: the projections that may hold rows are read first (open tasks unless the caller
has them; timers and subscriptions only when the instance has some; incidents only when the
step failed), then each table's changes are one statement (prebuilt, see
`app.persistence.task_rows` and `repo`), and the instance row is one UPDATE (one INSERT for a
new instance, written first since the projections refer to it).
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from app.domain.states import IncidentStatus, InstanceStatus, JobKind, JobStatus, TaskStatus
from app.engine import Snapshot
from app.persistence import event_log, instance_rows, repo, task_rows
from app.persistence.instance_rows import InstanceRow
from app.persistence.models import utcnow
from app.persistence.task_rows import TaskRow

from .context import Context

_KNOWN = "progress.open"  # session.info key: instance id -> (open tasks, open incidents)


def apply(ctx: Context, session: Session, instance: InstanceRow, snap: Snapshot,
          actor: str | None, cause: dict | None = None, *, done: TaskRow | None = None,
          open_tasks: list[TaskRow] | None = None, started: dict | None = None) -> list[int]:
    """Store `snap` on `instance` (inserted when it has no id yet, with an
    `instance_started` history entry holding `started`); return the ids of new jobs to
    dispatch after commit.

    `cause` says what moved the instance (a completed task with its data, a message...);
    the process's listeners (e.g. the support-case projection) receive it. `done` is the
    task this step completed (the caller marked it so; its groups are dropped with the
    others'); `open_tasks` are the instance's open tasks when the caller read them under
    the instance lock."""
    new = instance.id is None
    timers, subs, incidents = ([], [], []) if new else _waits(session, instance, snap)
    if open_tasks is None:
        open_tasks = [] if new else task_rows.open_of(session, instance.id)
    _store(session, instance, snap, actor, started or {})
    _sync_timers(session, instance, snap, timers)
    _sync_subscriptions(session, instance, snap, subs)
    incidents += _open_incidents(session, instance, snap, actor, incidents)
    jobs = _add_jobs(ctx, session, instance, snap)
    open_now = _sync_user_tasks(session, instance, snap, open_tasks, done)
    _remember(session, instance.id, open_now, incidents, new or bool(snap.errors))
    for listener in ctx.listeners.get(instance.process_key, ()):
        jobs += listener(session, instance, snap, actor, cause or {}) or []
    return jobs


def _waits(session: Session, instance: InstanceRow, snap: Snapshot):
    """The rows an existing instance may have that the step compares with the engine's."""
    timers = repo.pending_jobs(session, instance.id, JobKind.TIMER) \
        if instance.has_timers else []
    subs = repo.subscriptions(session, instance.id) if instance.has_subscriptions else []
    incidents = repo.open_incidents(session, instance.id) if snap.errors else []
    return timers, subs, list(incidents)


def _store(session: Session, instance: InstanceRow, snap: Snapshot, actor: str | None,
           started: dict) -> None:
    """The instance's own columns after the step; one INSERT or UPDATE. What it waits for is
    flagged so the next step skips the queries of kinds it has none of."""
    had = _waiting(instance)
    instance.state = snap.state
    instance.has_service_calls = instance.has_service_calls or bool(snap.service_calls)
    instance.has_timers, instance.has_subscriptions = bool(snap.timers), bool(snap.messages)
    if snap.completed:
        _close(instance, InstanceStatus.COMPLETED)
    if instance.id is None:
        instance_rows.insert_row(session, instance)
        event_log.add(session, instance.id, actor, "instance_started", **started)
    else:
        instance_rows.save(session, instance)
    if snap.completed:
        _ended(session, instance, actor, had)


def _waiting(instance: InstanceRow) -> tuple[bool, bool, bool]:
    return instance.has_timers, instance.has_service_calls, instance.has_subscriptions


def _close(instance: InstanceRow, status: InstanceStatus) -> None:
    instance.status, instance.ended_at = status, utcnow()
    instance.has_timers = instance.has_subscriptions = instance.has_service_calls = False


def _ended(session: Session, instance: InstanceRow, actor: str | None,
           had: tuple[bool, bool, bool]) -> None:
    """The instance ended: say so, and drop the timers, service calls and subscriptions it
    had before."""
    event_log.add(session, instance.id, actor, f"instance_{instance.status}")
    timers, calls, subs = had
    repo.delete_pending_jobs(session, instance.id, [
        kind for kind, flagged in ((JobKind.TIMER, timers), (JobKind.SERVICE_CALL, calls))
        if flagged])
    if subs:
        repo.delete_subscriptions(session, instance.id)


def _remember(session: Session, instance_id: int, tasks: list, incidents: list,
              known: bool) -> None:
    """Keep what the step knows of the instance's open tasks and incidents for the caller's
    answer (`known_open`) when it read or made all of them."""
    remembered = session.info.setdefault(_KNOWN, {})
    if known:
        remembered[instance_id] = (tasks, incidents)
    else:
        remembered.pop(instance_id, None)


def known_open(session: Session, instance_id: int) -> tuple[list, list] | None:
    """The open tasks and incidents of an instance, when this unit of work's last step of it
    already knows them (a new instance, a step that read its incidents); else None."""
    return session.info.get(_KNOWN, {}).get(instance_id)


def _sync_user_tasks(session: Session, instance: InstanceRow, snap: Snapshot,
                     tasks: list[TaskRow], done: TaskRow | None) -> list:
    """Cancel the open tasks the engine no longer has, add the ones it has that are new;
    the instance's open tasks after the step."""
    ready = {view.spiff_task_id: view for view in snap.user_tasks}
    closing = [done] if done is not None else []
    still_open, gone = [], []
    for task in tasks:
        if task.status != TaskStatus.OPEN or task is done:
            continue
        (still_open if ready.pop(task.spiff_task_id, None) else gone).append(task)
    task_rows.cancel(session, gone, utcnow())
    task_rows.drop_groups(session, closing + gone)
    if snap.completed:
        return []
    added = [_new_task(instance, view) for view in ready.values()]
    task_rows.insert_rows(session, added)
    return still_open + added


def _new_task(instance: InstanceRow, view) -> TaskRow:
    groups = list(view.candidate_groups)
    return TaskRow(
        id=None, instance_id=instance.id, spiff_task_id=view.spiff_task_id,
        name=view.element_id, title=view.title, process_key=instance.process_key,
        candidate_groups=groups, single_group=groups[0] if len(groups) == 1 else None,
        assignee=view.assignee, priority=view.priority or 3, due_at=view.due_at,
        form_key=view.form_key, ui_form_key=view.ui_form_key, form_enums=view.form_enums,
        instructions=view.instructions, status=TaskStatus.OPEN, created_at=utcnow(),
        completed_at=None, completed_by=None, data=None)


def _sync_timers(session: Session, instance: InstanceRow, snap: Snapshot, pending) -> None:
    if InstanceStatus(instance.status).finished:
        return  # _ended dropped them
    waiting = {(t.spiff_task_id, t.due_at): t for t in snap.timers}
    repo.delete_jobs(session, [job.id for job in pending
                               if waiting.pop((job.spiff_task_id, job.due_at), None) is None])
    repo.insert_jobs(session, [_job(instance, JobKind.TIMER, timer.spiff_task_id,
                                    timer.element_id, {}, timer.due_at, None, 1)
                               for timer in waiting.values()])


def _job(instance: InstanceRow, kind: str, spiff_task_id: str, element_id: str | None,
         payload: dict, due_at, lease, max_attempts: int) -> dict:
    return {"instance_id": instance.id, "kind": kind, "spiff_task_id": spiff_task_id,
            "element_id": element_id, "payload": payload, "status": JobStatus.PENDING,
            "due_at": due_at, "locked_until": lease, "attempts": 0,
            "max_attempts": max_attempts, "created_at": utcnow()}


def _sync_subscriptions(session: Session, instance: InstanceRow, snap: Snapshot,
                        subs) -> None:
    if InstanceStatus(instance.status).finished:
        return  # _ended dropped them
    wanted = {(m.name, correlation_key(m.correlation)) for m in snap.messages}
    drop = []
    for sub in subs:
        key = (sub.message_name, sub.correlation_key)
        if key in wanted:
            wanted.discard(key)
        else:
            drop.append(sub.id)
    repo.change_subscriptions(session, drop, [
        {"instance_id": instance.id, "message_name": name, "correlation_key": key}
        for name, key in sorted(wanted)])


def correlation_key(correlation: dict) -> str:
    """Canonical JSON of correlation values: the indexed lookup key of a subscription."""
    return json.dumps(correlation, sort_keys=True, separators=(",", ":"), default=str)


def _open_incidents(session: Session, instance: InstanceRow, snap: Snapshot,
                    actor: str | None, known: list) -> list:
    """An incident for each error of the step not already open; the new incidents."""
    seen = {i.spiff_task_id for i in known}
    rows = []
    for error in snap.errors:
        if error.spiff_task_id in seen:
            continue
        rows.append({"instance_id": instance.id, "spiff_task_id": error.spiff_task_id,
                     "element_id": error.element_id, "message": error.message,
                     "status": IncidentStatus.OPEN, "created_at": utcnow()})
        kind = "sandbox_violation" if error.sandbox_violation else "script_error"
        event_log.add(session, instance.id, actor, "incident_opened", reason=kind,
                      element_id=error.element_id, message=error.message)
    return list(repo.insert_incidents(session, rows))


def _add_jobs(ctx: Context, session: Session, instance: InstanceRow, snap: Snapshot) -> list:
    """Service calls, and the messages the process throws to other processes, as outbox
    jobs leased to the dispatch that follows the commit."""
    now = utcnow()
    lease = now + timedelta(seconds=ctx.settings.job_timeout_seconds)
    retries = ctx.settings.job_retries
    rows = [_job(instance, JobKind.SERVICE_CALL, call.spiff_task_id, call.element_id,
                 {"operation": call.operation, "params": call.params}, now, lease,
                 1 + (call.retries if call.retries is not None else retries))
            for call in snap.service_calls]
    rows += [_job(instance, JobKind.MESSAGE, "-", message.name,
                  {"name": message.name, "payload": message.payload,
                   "correlation": message.correlation}, now, lease, 1)
             for message in snap.outgoing]
    return repo.insert_jobs(session, rows)


def finish(session: Session, instance: InstanceRow, status: InstanceStatus,
           actor: str | None) -> None:
    """End an instance outside an engine step (cancel): close its tasks, drop its waits."""
    tasks = task_rows.open_of(session, instance.id)
    task_rows.cancel(session, tasks, utcnow())
    task_rows.drop_groups(session, tasks)
    had = _waiting(instance)
    _close(instance, status)
    instance_rows.save(session, instance)
    _ended(session, instance, actor, had)
