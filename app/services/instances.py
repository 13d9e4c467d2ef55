"""Starting, reading and steering process instances."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
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
from app.domain.states import IncidentStatus, InstanceStatus, TaskStatus
from app.persistence import repo
from app.persistence.crm import CaseInstance
from app.persistence.models import (
    Event,
    ProcessDefinition,
    ProcessInstance,
    Task,
    TaskGroup,
    utcnow,
)

from . import progress
from .context import Context
from .views import instance_detail, instance_summary


def start(ctx: Context, actor: Actor, process_key: str, business_key: str | None = None,
          variables: dict | None = None) -> dict:
    require(can_start(actor), "start instances")
    variables = check_variables(variables or {})
    with ctx.unit() as session:
        definition = latest_definition(session, process_key)
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
    pspec = process_spec(ctx, definition)
    snap = ctx.engine.start(pspec, variables, message)
    instance = ProcessInstance(
        definition_id=definition.id, process_key=definition.process_key,
        business_key=business_key, status=InstanceStatus.ACTIVE, state=snap.state,
        started_at=utcnow(), started_by=actor,
        has_timers=False, has_subscriptions=False, has_service_calls=False,
    )
    session.add(instance)
    session.flush()
    repo.add_event(session, instance.id, actor, "instance_started",
                   version=definition.version, business_key=business_key)
    return instance, progress.apply(ctx, session, instance, snap, actor, new=True), \
        snap.variables


def process_spec(ctx: Context, definition: ProcessDefinition):
    return ctx.engine.process_spec(definition.id, lambda: definition.spec_json)


def definition_of(ctx: Context, session: Session, instance: ProcessInstance) -> ProcessDefinition:
    """The instance's definition: a deployed definition never changes, so this process keeps
    it after the first load (no query)."""
    return ctx.definitions.get(session, instance.definition_id)


def latest_definition(session: Session, process_key: str) -> ProcessDefinition:
    definition = session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.process_key == process_key)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    ).first()
    if definition is None:
        raise ValidationFailed(f"no deployed process '{process_key}'",
                               [{"field": "process_key", "message": "unknown process key"}])
    return definition


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
    with ctx.unit() as session:
        instance, tasks = _readable_instance(session, actor, instance_id)
        definition = definition_of(ctx, session, instance)
        variables = ctx.engine.variables(process_spec(ctx, definition), instance.state)
        if tasks is not None:
            tasks = [t for t in tasks if t.instance_id == instance_id
                     and t.status == TaskStatus.OPEN]
        return instance_detail(session, instance, definition, variables, actor, tasks)


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
    with ctx.unit() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.execute(query.order_by(ProcessInstance.id.desc())
                               .offset((page - 1) * per_page).limit(per_page))
        return {"items": [instance_summary(row, version) for row, version in rows],
                "total": total}


def _readable_instance(session: Session, actor: Actor,
                       instance_id: int) -> tuple[ProcessInstance, list[Task] | None]:
    """The instance, when `access.can_read_instance` lets the actor read it (else 403), and
    the tasks of it and of its related instances when that check had to load them."""
    require(can_read_instances(actor), "read instances")
    instance = repo.get_or_404(session, ProcessInstance, instance_id, "instance")
    if reads_all_instances(actor):
        return instance, None
    related = _same_case(session, instance_id)
    starters = [instance.started_by] if related == {instance_id} else session.scalars(
        select(ProcessInstance.started_by).where(ProcessInstance.id.in_(related))).all()
    tasks = list(session.scalars(select(Task).where(Task.instance_id.in_(related))))
    facts = [TaskFacts(open=t.status == TaskStatus.OPEN, assignee=t.assignee,
                       candidate_groups=tuple(t.candidate_groups or ()),
                       completed_by=t.completed_by) for t in tasks]
    require(can_read_instance(actor, starters, facts), f"read instance {instance_id}")
    return instance, tasks


def _same_case(session: Session, instance_id: int) -> set[int]:
    """The instance and the instances working for the same support case (its SLA watch...)."""
    cases = select(CaseInstance.case_id).where(CaseInstance.instance_id == instance_id)
    return {instance_id, *session.scalars(
        select(CaseInstance.instance_id).where(CaseInstance.case_id.in_(cases)))}


def _readable_by(actor: Actor):
    """SQL of `access.can_read_instance` for an agent: started by them, or with a task they
    see (open and assigned to them or offered to one of their groups, or completed by them);
    or working for the same case as such an instance."""
    seen = [Task.completed_by == actor.username,
            and_(Task.status == TaskStatus.OPEN, Task.assignee == actor.username)]
    if actor.groups:
        seen.append(and_(Task.status == TaskStatus.OPEN, Task.id.in_(
            select(TaskGroup.task_id).where(TaskGroup.group_name.in_(sorted(actor.groups))))))
    direct = select(ProcessInstance.id).where(ProcessInstance.started_by == actor.username) \
        .union(select(Task.instance_id).where(or_(*seen)))
    cases = select(CaseInstance.case_id).where(CaseInstance.instance_id.in_(direct))
    return or_(ProcessInstance.id.in_(direct), ProcessInstance.id.in_(
        select(CaseInstance.instance_id).where(CaseInstance.case_id.in_(cases))))


def history(ctx: Context, actor: Actor, instance_id: int) -> dict:
    with ctx.unit() as session:
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
        instance = repo.lock_instance(session, instance_id)
        _expect(instance, source)
        instance.status = target
        repo.add_event(session, instance.id, actor.username, f"instance_{target.value}")
        jobs = [job.id for job in repo.pending_jobs(session, instance.id, "service_call")] \
            if instance.has_service_calls else []
        summary = instance_summary(instance, definition_of(ctx, session, instance).version)
    if target is InstanceStatus.ACTIVE:
        ctx.dispatcher.dispatch(jobs)
    return summary


def cancel(ctx: Context, actor: Actor, instance_id: int) -> dict:
    require(can_operate(actor), "cancel instances")
    with ctx.unit() as session:
        instance = repo.lock_instance(session, instance_id)
        if InstanceStatus(instance.status).finished:
            raise InvalidTransition(f"instance {instance_id} is already {instance.status}")
        definition = definition_of(ctx, session, instance)
        instance.state = ctx.engine.cancel(process_spec(ctx, definition), instance.state)
        for incident in repo.open_incidents(session, instance.id):
            incident.status, incident.resolved_at = IncidentStatus.RESOLVED, utcnow()
            incident.resolved_by = actor.username
        progress.finish(session, instance, InstanceStatus.CANCELLED, actor.username)
        return instance_summary(instance, definition.version)


def _expect(instance: ProcessInstance, status: InstanceStatus) -> None:
    if instance.status != status:
        raise InvalidTransition(f"instance {instance.id} is {instance.status}, not {status.value}")
