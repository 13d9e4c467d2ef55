"""SLA report figures per group, from plain per-case facts (no IO)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import fmean


@dataclass(frozen=True)
class SlaFacts:
    group: str
    met: bool | None  # None while the case is open
    consumed_minutes: float | None  # frozen at resolution
    breached_now: bool  # an open case already past its target


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def rows(facts: list[SlaFacts]) -> list[dict]:
    """Per group: resolved cases, compliance %, breaches (late or open past due), mean and p90
    business hours to resolution."""
    groups: dict[str, list[SlaFacts]] = defaultdict(list)
    for fact in facts:
        groups[fact.group].append(fact)
    return [_row(name, items) for name, items in sorted(groups.items())]


def _row(name: str, items: list[SlaFacts]) -> dict:
    resolved = [f for f in items if f.met is not None]
    hours = [f.consumed_minutes / 60 for f in resolved if f.consumed_minutes is not None]
    met = sum(1 for f in resolved if f.met)
    return {
        "group": name, "cases": len(items), "resolved": len(resolved),
        "compliance_pct": round(100 * met / len(resolved), 2) if resolved else None,
        "breaches": (len(resolved) - met) + sum(1 for f in items if f.breached_now),
        "mean_business_hours": round(fmean(hours), 2) if hours else None,
        "p90_business_hours": round(p90(hours), 2) if hours else None,
    }
