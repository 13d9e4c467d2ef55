"""Support KPIs over a period, from the support_case projection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.domain.kpis import CaseFacts, indicators
from app.persistence.crm import SupportCase


def report(ctx, date_from: datetime | None = None, date_to: datetime | None = None,
           product: str | None = None, segment: str | None = None) -> dict:
    """Indicators of the cases created in [date_from, date_to)."""
    query = select(SupportCase)
    if date_from is not None:
        query = query.where(SupportCase.created_at >= date_from)
    if date_to is not None:
        query = query.where(SupportCase.created_at < date_to)
    for column, value in ((SupportCase.product, product), (SupportCase.segment, segment)):
        if value is not None:
            query = query.where(column == value)
    calendars = ctx.engine.calendars
    with ctx.unit() as session:
        facts = [_facts(case, calendars) for case in session.scalars(query)]
    filters = {"from": date_from, "to": date_to, "product": product, "segment": segment}
    return {"filters": filters, **indicators(facts)}


def _facts(case: SupportCase, calendars: dict) -> CaseFacts:
    return CaseFacts(
        product=case.product, typology=case.typology, tier=case.tier,
        created_at=case.created_at, due_at=case.due_at, resolved_at=case.resolved_at,
        resolved_tier=case.resolved_tier, escalated=case.escalated,
        reprocess_count=case.reprocess_count, reincidence=case.reincidence_of is not None,
        became_incident=case.became_incident,
        calendar=calendars.get(case.calendar or "default", calendars["default"]),
    )
