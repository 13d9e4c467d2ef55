"""SLA reports: compliance per product, segment or tier, and the open cases most at risk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.domain.sla import AT_RISK_SHARE, SlaState
from app.domain.sla_report import SlaFacts, rows
from app.persistence.crm import SupportCase
from app.persistence.models import utcnow

from . import sla

GROUPS = {"product": SupportCase.product, "segment": SupportCase.segment}
OPEN = ("open", "waiting_customer")


def report(ctx, group_by: str = "product", date_from: datetime | None = None,
           date_to: datetime | None = None) -> dict:
    """Cases created in [date_from, date_to) grouped by product, segment or resolving tier."""
    query = select(SupportCase).where(SupportCase.sla_minutes.is_not(None))
    if date_from is not None:
        query = query.where(SupportCase.created_at >= date_from)
    if date_to is not None:
        query = query.where(SupportCase.created_at < date_to)
    now = utcnow()
    with ctx.unit() as session:
        facts = [_facts(case, group_by, now) for case in session.scalars(query)]
    return {"group_by": group_by, "from": date_from, "to": date_to, "items": rows(facts)}


def _facts(case: SupportCase, group_by: str, now: datetime) -> SlaFacts:
    tier = case.resolved_tier or case.tier
    group = tier if group_by == "tier" else getattr(case, group_by)
    block = sla.block(case, now) if case.status in OPEN else None
    return SlaFacts(group=group, met=case.sla_met if case.status not in OPEN else None,
                    consumed_minutes=case.sla_consumed_minutes,
                    breached_now=bool(block and block["state"] == SlaState.BREACHED),
                    ola=(case.ola or {}).get(group) if group_by == "tier" else None)


def at_risk(ctx, limit: int = 200) -> dict:
    """Open cases at risk or breached, the most consumed first."""
    risk = sla.risk_order(sla.clocks_at(ctx.engine.calendars))
    query = (select(SupportCase).where(SupportCase.status.in_(OPEN),
                                       SupportCase.sla_minutes.is_not(None),
                                       risk >= AT_RISK_SHARE)
             .order_by(risk.desc(), SupportCase.id).limit(limit))
    now = utcnow()
    with ctx.unit() as session:
        items = [_risk_item(case, now) for case in session.scalars(query)]
    return {"items": [i for i in items if i["sla"]["state"] != SlaState.PAUSED]}


def _risk_item(case: SupportCase, now: datetime) -> dict:
    return {"id": case.id, "customer_id": case.customer_id, "product": case.product,
            "priority": case.priority, "tier": case.tier, "status": case.status,
            "sla_step": case.sla_step, "sla": sla.block(case, now)}
