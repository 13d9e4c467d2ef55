"""Delivering messages to waiting instances, or starting the processes that listen for them.

An idempotency key makes a send happen once: concurrent sends with the same key are
serialized on the key (a transaction-scoped advisory lock on PostgreSQL; SQLite serializes all
writers already), so the second one reads the first one's receipt and returns its answer.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.domain.access import SYSTEM, Actor, can_start, require
from app.domain.errors import Conflict, NotFound
from app.domain.states import InstanceStatus
from app.persistence import event_log, instance_rows
from app.persistence.models import MessageReceipt, MessageSubscription, ProcessDefinition

from . import progress
from .instances import check_variables, definition_of, launch, process_spec


def send(ctx, actor: Actor, name: str, correlation: dict, payload: dict,
         idempotency_key: str | None = None) -> dict:
    require(can_start(actor), "send messages")
    check_variables(correlation, "correlation")
    check_variables(payload, "payload")
    try:
        with ctx.unit() as session:
            receipt = _receipt(ctx, session, idempotency_key) if idempotency_key else None
            if receipt is not None:
                return _repeat(receipt, name)
            answer, jobs = _deliver(ctx, session, actor, name, correlation, payload)
            if idempotency_key:
                session.add(MessageReceipt(idempotency_key=idempotency_key, message_name=name,
                                           response=answer))
    except IntegrityError:  # a receipt written meanwhile (not expected: sends are serialized)
        if not idempotency_key:
            raise
        return _first_answer(ctx, idempotency_key, name)
    ctx.dispatcher.dispatch(jobs)
    return answer


def publish(ctx, session, name: str, payload: dict, correlation: dict) -> list[int]:
    """Deliver a message thrown by a process (system actor); returns new job ids.

    Nobody listening drops it; waiting instances that are all suspended raise Conflict (the
    thrower's message job becomes an incident, retried once they resume)."""
    try:
        _, jobs = _deliver(ctx, session, SYSTEM, name, correlation, payload)
    except NotFound:
        return []
    return jobs


def _receipt(ctx, session, idempotency_key: str) -> MessageReceipt | None:
    """The receipt of an earlier send with this key, after waiting for any send with the same
    key still in progress (PostgreSQL: an advisory lock held until this transaction ends)."""
    if ctx.is_postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"message_receipt:{idempotency_key}"})
    return session.get(MessageReceipt, idempotency_key)


def _repeat(receipt: MessageReceipt, name: str) -> dict:
    """The first answer, when the key is reused for the same message."""
    if receipt.message_name != name:
        raise Conflict(f"idempotency key '{receipt.idempotency_key}' was already used for "
                       f"message '{receipt.message_name}', not '{name}'")
    return receipt.response


def _first_answer(ctx, idempotency_key: str, name: str) -> dict:
    with ctx.unit() as session:
        return _repeat(session.get(MessageReceipt, idempotency_key), name)


def _deliver(ctx, session, actor: Actor, name: str, correlation: dict, payload: dict):
    data = {**payload, **correlation}
    delivered, suspended, jobs = [], [], []
    for instance_id in _waiting(session, name, correlation):
        instance = instance_rows.lock(session, instance_id)
        if instance.status == InstanceStatus.SUSPENDED:
            suspended.append(instance)
            continue
        if instance.status != InstanceStatus.ACTIVE:
            continue
        definition = definition_of(ctx, session, instance)
        snap = ctx.engine.deliver_message(process_spec(ctx, definition), instance.state, name, data)
        event_log.add(session, instance.id, actor.username, "message_received", name=name,
                       correlation=correlation)
        jobs += progress.apply(ctx, session, instance, snap, actor.username,
                               cause={"message": name, "payload": data})
        delivered.append(instance.id)
    if suspended and not delivered:
        ids = ", ".join(str(i.id) for i in suspended)
        raise Conflict(f"the waiting instance(s) {ids} are suspended: resume them, then send "
                       f"message '{name}' again")
    for instance in suspended:  # some others received it: say so in the suspended ones' history
        event_log.add(session, instance.id, actor.username, "message_not_delivered", name=name,
                       correlation=correlation, reason="instance suspended")
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

