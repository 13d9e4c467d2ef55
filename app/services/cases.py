"""Support cases: register, read, list and reopen. The support_case process does the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.domain.access import Actor, can_start, require
from app.domain.crm import Channel, Impact
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.persistence.crm import CaseEvent, Customer, Product, SupportCase
from app.persistence.models import utcnow

from . import mass_incidents, messages, reference, sla
from .case_timeline import add_entry
from .instances import latest_definition, launch
from .processes import SUPPORT_PROCESS

REINCIDENCE_DAYS = 30
CASE_FIELDS = ("customer_id", "product", "typology", "channel", "subject", "description",
               "impact")


def register(ctx, actor: Actor, body: dict, reopened_from: int | None = None) -> dict:
    """Open a case and start its support_case instance; 422 names any unknown reference."""
    require(can_start(actor), "register cases")
    with ctx.unit() as session:
        customer, typology = _check(session, body)
        case = _new_case(session, body, customer, reopened_from)
        add_entry(session, case, actor.username, "registered", None, "N1", body["subject"],
                  {"channel": body["channel"], "reincidence_of": case.reincidence_of,
                   "reopened_from": reopened_from})
        definition = latest_definition(ctx, session, SUPPORT_PROCESS)
        variables = _variables(session, case, customer, typology)
        instance, jobs, _ = launch(ctx, session, definition, variables, f"case-{case.id}",
                                   actor.username)
        case.instance_id = instance.id
        jobs += mass_incidents.on_registered(ctx, session, case, actor.username)
        answer = {"case_id": case.id, "instance_id": instance.id, "priority": case.priority,
                  "due_at": case.due_at}
    ctx.dispatcher.dispatch(jobs)
    return answer


def _check(session, body: dict):
    errors = _enum_errors(body)
    customer = session.get(Customer, body.get("customer_id"))
    if customer is None:
        errors.append({"field": "customer_id", "message": "unknown customer"})
    elif not customer.email:
        errors.append({"field": "customer_id", "message": "the customer has no email to notify"})
    product = reference.find_product(session, body.get("product", ""))
    typology = reference.find_typology(session, body.get("product", ""), body.get("typology", ""))
    if product is None or not product.active:
        errors.append({"field": "product", "message": "unknown or inactive product"})
    elif typology is None:
        errors.append({"field": "typology", "message": f"unknown typology of {product.name}"})
    if errors:
        raise ValidationFailed("the case cannot be registered", errors)
    return customer, typology


def _enum_errors(body: dict) -> list[dict]:
    checks = (("channel", Channel), ("impact", Impact))
    return [{"field": name, "message": f"one of {', '.join(e.value for e in enum)}"}
            for name, enum in checks if body.get(name) not in {e.value for e in enum}]


def _new_case(session, body: dict, customer: Customer, reopened_from: int | None) -> SupportCase:
    case = SupportCase(**{k: body[k] for k in CASE_FIELDS}, segment=customer.segment,
                       status="open", tier="N1", created_at=utcnow(),
                       reincidence_of=_earlier_case(session, body), reopened_from=reopened_from)
    session.add(case)
    session.flush()
    return case


def _earlier_case(session, body: dict) -> int | None:
    """The latest case of the same customer, product and typology in the last 30 days."""
    since = utcnow() - timedelta(days=REINCIDENCE_DAYS)
    return session.scalar(
        select(SupportCase.id).where(
            SupportCase.customer_id == body["customer_id"],
            SupportCase.product == body["product"], SupportCase.typology == body["typology"],
            SupportCase.created_at >= since)
        .order_by(SupportCase.created_at.desc()).limit(1))


def _variables(session, case: SupportCase, customer: Customer, typology) -> dict:
    products = sorted(session.scalars(select(Product.name).where(Product.active)))
    return {
        "case_id": case.id, "customer_id": customer.id, "customer_name": customer.name,
        "customer_email": customer.email, "segment": customer.segment,
        "value_rank": customer.value_rank, "sensitivity": customer.sensitivity,
        "n1_agent": customer.n1_agent, "account_manager": customer.account_manager,
        "impact": case.impact, "channel": case.channel, "subject": case.subject,
        "description": case.description, "product": case.product, "typology": case.typology,
        "n1_resolvable": typology.n1_resolvable, "n1_guide": typology.guide,
        "reincidence": case.reincidence_of is not None, "reincidence_of": case.reincidence_of,
        "registered_at": case.created_at.isoformat(), "products": products,
    }


def get(ctx, actor: Actor, case_id: int) -> dict:
    with ctx.unit() as session:
        case = _case_or_404(session, case_id)
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                 .order_by(CaseEvent.id))
        return {**case_item(case), "links": _links(session, case),
                "timeline": [_entry(e) for e in events]}


def _case_or_404(session, case_id: int) -> SupportCase:
    case = session.get(SupportCase, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def _links(session, case: SupportCase) -> dict:
    def ids(column):
        return list(session.scalars(select(SupportCase.id).where(column == case.id)
                                    .order_by(SupportCase.id)))
    return {"reincidence_of": case.reincidence_of, "reincidences": ids(SupportCase.reincidence_of),
            "reopened_from": case.reopened_from, "reopened_as": ids(SupportCase.reopened_from),
            "major_incident_id": case.major_incident_id}


def _entry(event: CaseEvent) -> dict:
    return {"at": event.at, "actor": event.actor, "kind": event.kind,
            "from_tier": event.from_tier, "to_tier": event.to_tier, "reason": event.reason,
            "detail": event.detail}


def case_item(case: SupportCase) -> dict:
    return {
        "id": case.id, "customer_id": case.customer_id, "product": case.product,
        "typology": case.typology, "channel": case.channel, "subject": case.subject,
        "description": case.description, "impact": case.impact, "segment": case.segment,
        "status": case.status, "tier": case.tier, "priority": case.priority,
        "n2_group": case.n2_group, "n3_group": case.n3_group, "instance_id": case.instance_id,
        "reincidence": case.reincidence_of is not None,
        "reprocess_count": case.reprocess_count, "became_incident": case.became_incident,
        "resolved_tier": case.resolved_tier, "reopen_count": case.reopen_count,
        "sla_minutes": case.sla_minutes, "calendar": case.calendar,
        "created_at": case.created_at, "due_at": case.due_at, "resolved_at": case.resolved_at,
        "closed_at": case.closed_at, "sla": sla.block(case), "sla_step": case.sla_step,
        "sla_pauses": case.sla_pauses or [], "sla_met": case.sla_met, "ola": case.ola or {},
    }


def search(ctx, customer_id=None, product=None, status=None, priority=None, page=1,
           per_page=50) -> dict:
    query = select(SupportCase)
    for column, value in ((SupportCase.customer_id, customer_id), (SupportCase.product, product),
                          (SupportCase.status, status), (SupportCase.priority, priority)):
        if value is not None:
            query = query.where(column == value)
    with ctx.unit() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(SupportCase.id.desc())
                               .offset((page - 1) * per_page).limit(per_page))
        return {"items": [case_item(c) for c in rows], "total": total}


def reopen(ctx, actor: Actor, case_id: int, reason: str) -> tuple[dict, bool]:
    """Reopen inside the window (back to the resolving tier) or open a new linked case.

    Returns the case and whether it is a new one."""
    require(can_start(actor), "reopen cases")
    with ctx.unit() as session:
        case = _case_or_404(session, case_id)
        status, body = case.status, _reopen_body(case, reason)
    if status == "resolved":
        messages.send(ctx, actor, "case_reopened", {"case_id": case_id},
                      {"reopen_reason": reason})
        return get(ctx, actor, case_id), False
    if status == "closed":
        created = register(ctx, actor, body, reopened_from=case_id)
        return get(ctx, actor, created["case_id"]), True
    raise Conflict(f"case {case_id} is {status}; only resolved or closed cases reopen")


def escalate(ctx, actor: Actor, case_id: int, reason: str) -> dict:
    """The account manager's escalation: the next ladder step, through the same watch."""
    with ctx.unit() as session:
        case = _case_or_404(session, case_id)
        customer = session.get(Customer, case.customer_id)
        step = case.sla_step
    require(actor.is_admin or actor.username == customer.account_manager,
            "escalate this case (only its account manager may)")
    if case.status in ("resolved", "closed"):
        raise Conflict(f"case {case_id} is {case.status}")
    if step == "critical":
        raise Conflict(f"case {case_id} is already at the top of the escalation ladder")
    messages.send(ctx, actor, "sla_escalate", {"case_id": case_id},
                  {"escalated_by": actor.username, "reason": reason})
    return get(ctx, actor, case_id)


def _reopen_body(case: SupportCase, reason: str) -> dict:
    return {"customer_id": case.customer_id, "product": case.product, "typology": case.typology,
            "channel": case.channel, "impact": case.impact,
            "subject": f"Reapertura del caso {case.id}: {case.subject}"[:300],
            "description": reason or case.description}

