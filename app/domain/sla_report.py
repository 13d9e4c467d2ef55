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
    ola: dict | None = None  # {"target", "spent"} of the group's tier, when grouped by tier


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
    return {**_ola(items),
        "group": name, "cases": len(items), "resolved": len(resolved),
        "compliance_pct": round(100 * met / len(resolved), 2) if resolved else None,
        "breaches": (len(resolved) - met) + sum(1 for f in items if f.breached_now),
        "mean_business_hours": round(fmean(hours), 2) if hours else None,
        "p90_business_hours": round(p90(hours), 2) if hours else None,
    }


def _ola(items: list[SlaFacts]) -> dict:
    """OLA figures of a tier: cases whose time at the tier stayed within its internal target."""
    measured = [f.ola for f in items if f.ola and f.ola.get("target") and f.ola.get("spent")]
    if not measured:
        return {"ola_compliance_pct": None, "ola_mean_business_hours": None}
    within = sum(1 for o in measured if o["spent"] <= o["target"])
    return {"ola_compliance_pct": round(100 * within / len(measured), 2),
            "ola_mean_business_hours": round(fmean(o["spent"] for o in measured) / 60, 2)}
