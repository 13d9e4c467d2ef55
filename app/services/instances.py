"""Starting, reading and steering process instances."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from app.domain.access import (
    Actor,
    TaskFacts,
    can_operate,
    can_read_instance,
    can_read_instances,
    can_start,
    reads_all_instances,
    require,
)
from app.domain.errors import InvalidTransition, ValidationFailed
from app.domain.states import InstanceStatus, JobKind, TaskStatus
from app.persistence import event_log, instance_rows, repo, task_rows
from app.persistence.crm import CaseInstance
from app.persistence.instance_rows import InstanceRow
from app.persistence.models import Event, ProcessDefinition, ProcessInstance, Task, utcnow
from app.persistence.task_rows import TaskRow

from . import caches, progress
from .context import Context
from .inbox import offered_to
from .views import instance_detail, instance_summary


def start(ctx: Context, actor: Actor, process_key: str, business_key: str | None = None,
          variables: dict | None = None) -> dict:
    require(can_start(actor), "start instances")
    variables = check_variables(variables or {})
    with ctx.unit() as session:
        definition = latest_definition(ctx, session, process_key)
        instance, jobs, current = launch(ctx, session, definition, variables, business_key,
                                         actor.username)
        tasks, incidents = progress.known_open(session, instance.id)
        detail = instance_detail(session, instance, definition, current, actor, tasks,
                                 incidents)
    ctx.dispatcher.dispatch(jobs)
    return detail


def launch(ctx: Context, session: Session, definition: ProcessDefinition, variables: dict,
           business_key: str | None, actor: str | None, message: tuple | None = None):
    """Create and run an instance of `definition` inside the caller's transaction.

    Returns the instance, the ids of its new jobs and its current variables."""
    snap = ctx.engine.start(process_spec(ctx, definition), variables, message)
    instance = InstanceRow(
        id=None, definition_id=definition.id, process_key=definition.process_key,
        business_key=business_key, status=InstanceStatus.ACTIVE, state=snap.state, version=1,
        started_at=utcnow(), ended_at=None, started_by=actor, has_timers=False,
        has_subscriptions=False, has_service_calls=False)
    jobs = progress.apply(ctx, session, instance, snap, actor,
                          started={"version": definition.version, "business_key": business_key})
    return instance, jobs, snap.variables


def process_spec(ctx: Context, definition: ProcessDefinition):
    """The engine's restored spec of a definition (read from the database once per process,
    in a read unit of its own)."""
    def load() -> str:
        with ctx.read() as session:
            return caches.spec_json(session, definition.id)
    return ctx.engine.process_spec(definition.id, load)


def definition_of(ctx: Context, session: Session, instance) -> ProcessDefinition:
    """The instance's definition: a deployed definition never changes, so this process keeps
    it after the first load (no query)."""
    return ctx.definitions.get(session, instance.definition_id)


_LATEST = select(ProcessDefinition.__table__.c.id).where(
    ProcessDefinition.__table__.c.process_key == bindparam("process_key")).order_by(
    ProcessDefinition.__table__.c.version.desc()).limit(1)


def latest_definition(ctx: Context, session: Session, process_key: str) -> ProcessDefinition:
    """The newest version of a process (one indexed lookup; the row itself is cached)."""
    found = session.connection().execute(_LATEST, {"process_key": process_key}).scalar()
    if found is None:
        raise ValidationFailed(f"no deployed process '{process_key}'",
                               [{"field": "process_key", "message": "unknown process key"}])
    return ctx.definitions.get(session, found)


def check_variables(variables: dict, field: str = "variables") -> dict:
    """Names scripts can use: identifiers not starting with `_` (`field`.<name> in errors)."""
    bad = [name for name in variables
           if not (isinstance(name, str) and name.isidentifier() and not name.startswith("_"))]
    if bad:
        raise ValidationFailed(f"invalid names in {field}", [
            {"field": f"{field}.{name}", "message": "must be an identifier not starting with _"}
            for name in bad
        ])
    return variables


def get(ctx: Context, actor: Actor, instance_id: int) -> dict:
    with ctx.read() as session:
        instance, tasks, incidents = _readable_instance(session, actor, instance_id)
        definition = definition_of(ctx, session, instance)
        variables = ctx.engine.variables(process_spec(ctx, definition), instance.state)
        if tasks is not None:
            tasks = [t for t in tasks if t.instance_id == instance_id
                     and t.status == TaskStatus.OPEN]
        return instance_detail(session, instance, definition, variables, actor, tasks,
                               None if incidents else [])


def search(ctx: Context, actor: Actor, process_key=None, status=None, business_key=None,
           page=1, per_page=50) -> dict:
    """Instances the actor may read, newest first, each with its definition version."""
    require(can_read_instances(actor), "read instances")
    query = select(ProcessInstance, ProcessDefinition.version).join(
        ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
    for column, value in ((ProcessInstance.process_key, process_key),
                          (ProcessInstance.status, status),
                          (ProcessInstance.business_key, business_key)):
        if value is not None:
            query = query.where(column == value)
    if not reads_all_instances(actor):
        query = query.where(_readable_by(actor))
    with ctx.read() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.execute(query.order_by(ProcessInstance.id.desc())
                               .offset((page - 1) * per_page).limit(per_page))
        return {"items": [instance_summary(row, version) for row, version in rows],
                "total": total}


_TASKS = task_rows.TABLE
_LINKS = CaseInstance.__table__
_TASKS_OF = select(*task_rows.COLUMNS).where(
    _TASKS.c.instance_id.in_(bindparam("ids", expanding=True))).order_by(_TASKS.c.id)
_RELATED = select(_LINKS.c.instance_id).where(_LINKS.c.case_id == bindparam("case_id"))
_STARTERS = select(ProcessInstance.__table__.c.started_by).where(
    ProcessInstance.__table__.c.id.in_(bindparam("ids", expanding=True)))


def _readable_instance(session: Session, actor: Actor, instance_id: int
                       ) -> tuple[InstanceRow, list[TaskRow] | None, bool]:
    """The instance, when `access.can_read_instance` lets the actor read it (else 403); the
    tasks of it and of the instances working for the same case when that check had to load
    them; whether it has open incidents."""
    require(can_read_instances(actor), "read instances")
    instance, case_id, incidents = instance_rows.read(session, instance_id)
    if reads_all_instances(actor):
        return instance, None, incidents
    conn = session.connection()
    related = sorted({instance_id, *(conn.execute(_RELATED, {"case_id": case_id}).scalars()
                                     if case_id is not None else ())})
    starters = [instance.started_by] if related == [instance_id] else \
        conn.execute(_STARTERS, {"ids": related}).scalars().all()
    tasks = [task_rows.row_of(row) for row in conn.execute(_TASKS_OF, {"ids": related})]
    facts = [TaskFacts(open=t.status == TaskStatus.OPEN, assignee=t.assignee,
                       candidate_groups=tuple(t.candidate_groups or ()),
                       completed_by=t.completed_by) for t in tasks]
    require(can_read_instance(actor, starters, facts), f"read instance {instance_id}")
    return instance, tasks, incidents


def _readable_by(actor: Actor):
    """SQL of `access.can_read_instance` for an agent: started by them, or with a task they
    see (open and assigned to them or offered to one of their groups, or completed by them);
    or working for the same case as such an instance."""
    seen = [Task.completed_by == actor.username,
            and_(Task.status == TaskStatus.OPEN, Task.assignee == actor.username)]
    if actor.groups:
        seen.append(and_(Task.status == TaskStatus.OPEN, offered_to(sorted(actor.groups))))
    direct = select(ProcessInstance.id).where(ProcessInstance.started_by == actor.username) \
        .union(select(Task.instance_id).where(or_(*seen)))
    cases = select(CaseInstance.case_id).where(CaseInstance.instance_id.in_(direct))
    return or_(ProcessInstance.id.in_(direct), ProcessInstance.id.in_(
        select(CaseInstance.instance_id).where(CaseInstance.case_id.in_(cases))))


def history(ctx: Context, actor: Actor, instance_id: int) -> dict:
    with ctx.read() as session:
        _readable_instance(session, actor, instance_id)
        events = session.scalars(select(Event).where(Event.instance_id == instance_id)
                                 .order_by(Event.id))
        return {"items": [{"at": e.at, "actor": e.actor, "kind": e.kind, "detail": e.detail}
                          for e in events]}


def suspend(ctx: Context, actor: Actor, instance_id: int) -> dict:
    return _transition(ctx, actor, instance_id, "suspend", InstanceStatus.ACTIVE,
                       InstanceStatus.SUSPENDED)


def resume(ctx: Context, actor: Actor, instance_id: int) -> dict:
    return _transition(ctx, actor, instance_id, "resume", InstanceStatus.SUSPENDED,
                       InstanceStatus.ACTIVE)


def _transition(ctx: Context, actor: Actor, instance_id: int, action: str,
                source: InstanceStatus, target: InstanceStatus) -> dict:
    require(can_operate(actor), f"{action} instances")
    with ctx.unit() as session:
        instance = instance_rows.lock(session, instance_id)
        _expect(instance, source)
        instance.status = target
        instance_rows.save(session, instance)
        event_log.add(session, instance.id, actor.username, f"instance_{target.value}")
        jobs = [job.id for job in repo.pending_jobs(session, instance.id, JobKind.SERVICE_CALL)] \
            if instance.has_service_calls else []
        summary = instance_summary(instance, definition_of(ctx, session, instance).version)
    if target is InstanceStatus.ACTIVE:
        ctx.dispatcher.dispatch(jobs)
    return summary


def cancel(ctx: Context, actor: Actor, instance_id: int) -> dict:
    require(can_operate(actor), "cancel instances")
    with ctx.unit() as session:
        instance = instance_rows.lock(session, instance_id)
        if InstanceStatus(instance.status).finished:
            raise InvalidTransition(f"instance {instance_id} is already {instance.status}")
        definition = definition_of(ctx, session, instance)
        instance.state = ctx.engine.cancel(process_spec(ctx, definition), instance.state)
        repo.resolve_incidents(session, instance.id, actor.username, utcnow())
        progress.finish(session, instance, InstanceStatus.CANCELLED, actor.username)
        return instance_summary(instance, definition.version)


def _expect(instance: InstanceRow, status: InstanceStatus) -> None:
    if instance.status != status:
        raise InvalidTransition(f"instance {instance.id} is {instance.status}, not {status.value}")
