"""Drawing the cases' scripts up front: customer, product, typology and path of each case,
with deliberate reincidences (pure: a seeded random.Random in, plain values out)."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from .mix import (
    CHANNELS,
    FIRST_CONTACT,
    IMPACTS,
    INCIDENT,
    INFO_REQUEST,
    MISROUTE,
    PRODUCTS,
    REINCIDENCE,
    REOPEN,
    SEGMENTS,
)


@dataclass
class Case:
    """One case's script (drawn up front) and how far it got."""

    at: datetime
    customer: dict
    product: str
    typology: str
    path: str  # "n1" | "n2" | "misroute" | "incident"
    impact: str
    channel: str
    ask_info: bool = False
    reopen: bool = False
    true_product: str | None = None  # where a misrouted case belongs
    case_id: int | None = None
    instance_id: int | None = None


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def plan_cases(rng, catalog: dict, customers: list[dict], times: list[datetime]) -> list[Case]:
    """One scripted case per registration time, in order. Reincidences are deliberate: the
    other cases avoid a customer, product and typology seen in the previous 31 days."""
    weights = {p: PRODUCTS.get(p, (1, 0))[0] for p in catalog}
    activity = [SEGMENTS[c["segment"]][2] * rng.lognormvariate(0, 0.5) for c in customers]
    seen: dict[tuple, datetime] = {}
    cases: list[Case] = []
    times = sorted(times)
    for at in times:
        earlier = [c for c in cases[bisect_left(times, at - timedelta(days=28)):
                                    bisect_right(times, at - timedelta(hours=1))]
                   if not c.true_product]
        if earlier and rng.random() < REINCIDENCE:
            same, path = rng.choice(earlier), _path(rng)
            if path == "misroute" or (path == "n1" and not
                                      catalog[same.product]["typologies"][same.typology]):
                path = "n2"
            case = _case(rng, at, same.customer, same.product, same.typology, path)
        else:
            case = _fresh(rng, catalog, weights, customers, activity, at, seen)
        for product in filter(None, (case.product, case.true_product)):
            seen[(case.customer["id"], product, case.typology)] = at
        cases.append(case)
    return cases


def _path(rng) -> str:
    return _pick(rng, {"n1": FIRST_CONTACT, "misroute": MISROUTE, "incident": INCIDENT,
                       "n2": 1 - FIRST_CONTACT - MISROUTE - INCIDENT})


def _case(rng, at, customer, product, typology, path, true_product=None) -> Case:
    return Case(at, customer, product, typology, path, _pick(rng, IMPACTS), _pick(rng, CHANNELS),
                ask_info=rng.random() < INFO_REQUEST, reopen=rng.random() < REOPEN,
                true_product=true_product)


def _fresh(rng, catalog, weights, customers, activity, at, seen) -> Case:
    path, product, true_product = _path(rng), _pick(rng, weights), None
    typologies = catalog[product]["typologies"]
    resolvable = [t for t, n1 in typologies.items() if n1]
    if path == "n1" and resolvable:
        typology = rng.choice(resolvable)
    elif path == "misroute" and len(weights) > 1:  # "Otros": the customer could not tell
        true_product = _pick(rng, {p: w for p, w in weights.items() if p != product})
        typology = "Otros" if "Otros" in typologies else rng.choice(list(typologies))
    else:
        path, typology = path if path == "incident" else "n2", rng.choice(list(typologies))
    for _ in range(50):
        customer = rng.choices(customers, weights=activity)[0]
        keys = [(customer["id"], p, typology) for p in (product, true_product) if p]
        if all(seen.get(k, at - timedelta(days=90)) < at - timedelta(days=31) for k in keys):
            break
    return _case(rng, at, customer, product, typology, path, true_product)
