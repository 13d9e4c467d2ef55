"""Delivering messages to waiting instances, or starting the processes that listen for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.access import SYSTEM, Actor, can_start, require
from app.domain.errors import NotFound
from app.domain.states import InstanceStatus
from app.persistence import repo
from app.persistence.models import MessageReceipt, MessageSubscription, ProcessDefinition

from . import progress
from .instances import check_variables, launch, process_spec


def send(ctx, actor: Actor, name: str, correlation: dict, payload: dict,
         idempotency_key: str | None = None) -> dict:
    require(can_start(actor), "send messages")
    check_variables(correlation)
    check_variables(payload)
    try:
        with ctx.unit() as session:
            receipt = session.get(MessageReceipt, idempotency_key) if idempotency_key else None
            if receipt is not None:
                return receipt.response
            answer, jobs = _deliver(ctx, session, actor, name, correlation, payload)
            if idempotency_key:
                session.add(MessageReceipt(idempotency_key=idempotency_key, message_name=name,
                                           response=answer))
    except IntegrityError:
        return _first_answer(ctx, idempotency_key)
    ctx.dispatcher.dispatch(jobs)
    return answer


def publish(ctx, session, name: str, payload: dict, correlation: dict) -> list[int]:
    """Deliver a message thrown by a process (system actor); returns new job ids."""
    try:
        _, jobs = _deliver(ctx, session, SYSTEM, name, correlation, payload)
    except NotFound:
        return []
    return jobs


def _first_answer(ctx, idempotency_key: str) -> dict:
    with ctx.unit() as session:
        return session.get(MessageReceipt, idempotency_key).response


def _deliver(ctx, session, actor: Actor, name: str, correlation: dict, payload: dict):
    data = {**payload, **correlation}
    delivered, jobs = [], []
    for instance_id in _waiting(session, name, correlation):
        instance = repo.lock_instance(session, instance_id)
        if instance.status != InstanceStatus.ACTIVE:
            continue
        definition = repo.definition_of(session, instance)
        snap = ctx.engine.deliver_message(process_spec(ctx, definition), instance.state, name, data)
        repo.add_event(session, instance.id, actor.username, "message_received", name=name,
                       correlation=correlation)
        jobs += progress.apply(ctx, session, instance, snap, actor.username,
                               cause={"message": name, "payload": data})
        delivered.append(instance.id)
    if not delivered:
        delivered, jobs = _start_listeners(ctx, session, actor, name, data)
    return {"instances": delivered}, jobs


def _waiting(session, name: str, correlation: dict) -> list[int]:
    key = progress.correlation_key(correlation)
    return sorted(set(session.scalars(select(MessageSubscription.instance_id).where(
        MessageSubscription.message_name == name, MessageSubscription.correlation_key == key))))


def _start_listeners(ctx, session, actor: Actor, name: str, data: dict):
    listeners = [d for d in _latest_definitions(session) if name in (d.start_messages or [])]
    if not listeners:
        raise NotFound(f"no instance waits for message '{name}' and no start event listens for it")
    started, jobs = [], []
    for definition in listeners:
        instance, new_jobs, _ = launch(ctx, session, definition, {}, None, actor.username,
                                    message=(name, data))
        started.append(instance.id)
        jobs += new_jobs
    return started, jobs


def _latest_definitions(session) -> list[ProcessDefinition]:
    rows = session.scalars(select(ProcessDefinition).order_by(
        ProcessDefinition.process_key, ProcessDefinition.version.desc()))
    latest = {}
    for row in rows:
        latest.setdefault(row.process_key, row)
    return list(latest.values())

