"""Support KPIs (the seed thesis' Tabla 8), computed from plain case facts.

Every indicator carries its formula so that the API documents itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from .business_time import business_minutes_between
from .calendar import BusinessCalendar

FORMULAS = {
    "ans_compliance_pct": "resolved cases with resolved_at <= due_at / resolved cases x 100",
    "mean_resolution_business_hours": "mean over resolved cases of the business hours between "
                                      "created_at and resolved_at, in the case's calendar",
    "first_contact_resolution_pct": "resolved cases solved by N1 without escalation / resolved "
                                    "cases x 100",
    "reprocess_pct": "cases returned at least once as misrouted / cases x 100",
    "reincidence_pct": "cases of the same customer, product and typology as another case of "
                       "the previous 30 days / cases x 100",
    "incident_share_pct": "support cases reclassified as incidents (sent to N3) / cases x 100",
}


@dataclass(frozen=True)
class CaseFacts:
    product: str
    typology: str
    tier: str
    created_at: datetime
    due_at: datetime | None
    resolved_at: datetime | None
    resolved_tier: str | None
    escalated: bool
    reprocess_count: int
    reincidence: bool
    became_incident: bool
    calendar: BusinessCalendar

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


def indicators(cases: list[CaseFacts]) -> dict:
    """{name: {"value", "formula"}} plus the breakdowns by product, typology and tier."""
    resolved = [c for c in cases if c.resolved]
    values = {
        "ans_compliance_pct": _pct(sum(_on_time(c) for c in resolved), len(resolved)),
        "mean_resolution_business_hours": _mean_hours(resolved),
        "first_contact_resolution_pct": _pct(sum(_first_contact(c) for c in resolved),
                                             len(resolved)),
        "reprocess_pct": _pct(sum(c.reprocess_count > 0 for c in cases), len(cases)),
        "reincidence_pct": _pct(sum(c.reincidence for c in cases), len(cases)),
        "incident_share_pct": _pct(sum(c.became_incident for c in cases), len(cases)),
    }
    return {
        "cases": len(cases), "resolved": len(resolved),
        "indicators": {k: {"value": v, "formula": FORMULAS[k]} for k, v in values.items()},
        "by_product": dict(sorted(Counter(c.product for c in cases).items())),
        "by_typology": dict(sorted(Counter(f"{c.product} / {c.typology}" for c in cases).items())),
        "by_tier": dict(sorted(Counter(c.resolved_tier or c.tier for c in cases).items())),
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _on_time(case: CaseFacts) -> bool:
    return case.due_at is not None and case.resolved_at <= case.due_at


def _first_contact(case: CaseFacts) -> bool:
    return case.resolved_tier == "N1" and not case.escalated


def _mean_hours(resolved: list[CaseFacts]) -> float | None:
    if not resolved:
        return None
    minutes = [business_minutes_between(c.created_at, c.resolved_at, c.calendar) for c in resolved]
    return round(fmean(minutes) / 60.0, 2)
