"""Starting, reading and steering process instances."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.domain.access import Actor, can_operate, can_start, require
from app.domain.errors import InvalidTransition, ValidationFailed
from app.domain.states import IncidentStatus, InstanceStatus
from app.persistence import repo
from app.persistence.models import Event, ProcessDefinition, ProcessInstance, utcnow

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
        detail = instance_detail(session, instance, definition, current, actor)
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
    )
    session.add(instance)
    session.flush()
    repo.add_event(session, instance.id, actor, "instance_started",
                   version=definition.version, business_key=business_key)
    return instance, progress.apply(ctx, session, instance, snap, actor), snap.variables


def process_spec(ctx: Context, definition: ProcessDefinition):
    return ctx.engine.process_spec(definition.id, lambda: definition.spec_json)


def latest_definition(session: Session, process_key: str) -> ProcessDefinition:
    definition = session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.process_key == process_key)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    ).first()
    if definition is None:
        raise ValidationFailed(f"no deployed process '{process_key}'",
                               [{"field": "process_key", "message": "unknown process key"}])
    return definition


def check_variables(variables: dict) -> dict:
    bad = [name for name in variables if not (name.isidentifier() and not name.startswith("_"))]
    if bad:
        raise ValidationFailed("invalid variable names", [
            {"field": f"variables.{name}", "message": "must be an identifier not starting with _"}
            for name in bad
        ])
    return variables


def get(ctx: Context, actor: Actor, instance_id: int) -> dict:
    with ctx.unit() as session:
        instance = repo.get_or_404(session, ProcessInstance, instance_id, "instance")
        definition = repo.definition_of(session, instance)
        variables = ctx.engine.variables(process_spec(ctx, definition), instance.state)
        return instance_detail(session, instance, definition, variables, actor)


def search(ctx: Context, process_key=None, status=None, business_key=None, page=1,
           per_page=50) -> dict:
    query = select(ProcessInstance)
    for column, value in ((ProcessInstance.process_key, process_key),
                          (ProcessInstance.status, status),
                          (ProcessInstance.business_key, business_key)):
        if value is not None:
            query = query.where(column == value)
    with ctx.unit() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(ProcessInstance.id.desc())
                               .offset((page - 1) * per_page).limit(per_page))
        return {"items": [instance_summary(row) for row in rows], "total": total}


def history(ctx: Context, instance_id: int) -> dict:
    with ctx.unit() as session:
        repo.get_or_404(session, ProcessInstance, instance_id, "instance")
        events = session.scalars(select(Event).where(Event.instance_id == instance_id)
                                 .order_by(Event.id))
        return {"items": [{"at": e.at, "actor": e.actor, "kind": e.kind, "detail": e.detail}
                          for e in events]}


def suspend(ctx: Context, actor: Actor, instance_id: int) -> dict:
    return _transition(ctx, actor, instance_id, InstanceStatus.ACTIVE, InstanceStatus.SUSPENDED)


def resume(ctx: Context, actor: Actor, instance_id: int) -> dict:
    return _transition(ctx, actor, instance_id, InstanceStatus.SUSPENDED, InstanceStatus.ACTIVE)


def _transition(ctx: Context, actor: Actor, instance_id: int, source: InstanceStatus,
                target: InstanceStatus) -> dict:
    require(can_operate(actor), f"{target.value} instances")
    with ctx.unit() as session:
        instance = repo.lock_instance(session, instance_id)
        _expect(instance, source)
        instance.status = target
        repo.add_event(session, instance.id, actor.username, f"instance_{target.value}")
        jobs = [job.id for job in repo.pending_jobs(session, instance.id, "service_call")]
        summary = instance_summary(instance)
    if target is InstanceStatus.ACTIVE:
        ctx.dispatcher.dispatch(jobs)
    return summary


def cancel(ctx: Context, actor: Actor, instance_id: int) -> dict:
    require(can_operate(actor), "cancel instances")
    with ctx.unit() as session:
        instance = repo.lock_instance(session, instance_id)
        if InstanceStatus(instance.status).finished:
            raise InvalidTransition(f"instance {instance_id} is already {instance.status}")
        definition = repo.definition_of(session, instance)
        instance.state = ctx.engine.cancel(process_spec(ctx, definition), instance.state)
        for incident in repo.open_incidents(session, instance.id):
            incident.status, incident.resolved_at = IncidentStatus.RESOLVED, utcnow()
            incident.resolved_by = actor.username
        progress.finish(session, instance, InstanceStatus.CANCELLED, actor.username)
        return instance_summary(instance)


def _expect(instance: ProcessInstance, status: InstanceStatus) -> None:
    if instance.status != status:
        raise InvalidTransition(f"instance {instance.id} is {instance.status}, not {status.value}")
