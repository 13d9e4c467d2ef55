"""Scenario 3's client: support cases registered and walked to resolution over HTTP.

Each case is drawn from a seeded random.Random: a customer, a product, a typology and one of
the paths of the support-flow issue (the shares of app/demo_data/mix.py), then walked step by
step: the open task of the case's instance is listed and completed by a user of the right
group (the customer's N1 agent, a member of the product's N2 or N3 group), and for the info
request the `customer_info` message is sent as the customer's answer. The case must end
`resolved` at the expected tier and product. Runs in a spawned process: no app code imported.
"""

from __future__ import annotations

import http.client
import random
import time
from dataclasses import dataclass

from bench.client import Api, ApiError, LoopResult

# path: (share in %, steps). A step is (who, form data) or ("message", payload); who is the
# customer's N1 agent, the N2/N3 group of the product as registered, or the N2 group of the
# product a misrouted case really belongs to.
N1_RESOLVE = ("n1", {"action": "resolve", "solution": "Se aplicó el ajuste con el cliente"})
ESCALATE = ("n1", {"action": "escalate", "reason": "Requiere revisión de operaciones"})
N2_RESOLVE = ("n2", {"action": "resolve", "solution": "Se reprocesó la operación"})
PATHS = {
    "n1": (35, [N1_RESOLVE]),
    "n2": (35, [ESCALATE, N2_RESOLVE]),
    "misroute": (10, [ESCALATE, ("n2", {"action": "misrouted", "reason": "Otro producto"}),
                      ("n2_true", N2_RESOLVE[1])]),
    "incident": (12, [ESCALATE, ("n2", {"action": "incident", "reason": "Falla de plataforma"}),
                      ("n3", {"diagnosis": "Bloqueo en el lote", "fix": "Lote reprocesado"}),
                      ("n2", {"confirmed": True, "solution": "El cliente confirma"})]),
    "info": (8, [("n1", {"action": "request_info", "question": "Referencia de la operación"}),
                 ("message", {"info": "Adjunto el soporte solicitado"}), N1_RESOLVE]),
}
RESOLVED_TIER = {"n1": "N1", "info": "N1", "n2": "N2", "misroute": "N2", "incident": "N3"}
# product weights of app/demo_data/mix.py PRODUCTS (others: 1)
PRODUCTS = {"Pagos": 24, "Sucursal Digital": 20, "Recaudos": 11, "Conexión Directa": 9,
            "Depósitos": 8, "Tarjetas": 8, "Adquirencia": 6, "Pasarela de Pagos": 6, "Swift": 5,
            "Transporte de Efectivo": 3}
CHANNELS = {"email": 40, "phone": 25, "portal": 20, "chat": 15}
IMPACTS = {"one_user": 80, "several_users": 15, "whole_service": 5}


@dataclass
class Plan:
    """One case's script."""

    path: str
    customer: dict
    product: str
    typology: str
    true_product: str | None = None


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def draw(rng: random.Random, catalog: dict, customers: list[dict]) -> Plan:
    """A case: path by its share; N1 paths get an N1-resolvable typology, a misroute is filed
    as "Otros" under a product other than the one it belongs to."""
    path = _pick(rng, {name: share for name, (share, _) in PATHS.items()})
    customer = rng.choice(customers)
    products = {p: PRODUCTS.get(p, 1) for p, item in catalog.items()
                if path not in ("n1", "info") or any(item["typologies"].values())}
    product = _pick(rng, products)
    typologies = catalog[product]["typologies"]
    if path in ("n1", "info"):
        return Plan(path, customer, product, rng.choice([t for t, ok in typologies.items() if ok]))
    if path == "misroute":
        true_product = _pick(rng, {p: w for p, w in products.items() if p != product})
        return Plan(path, customer, product, "Otros", true_product)
    return Plan(path, customer, product, rng.choice(list(typologies)))


class Walker:
    """One client: an API connection per user, each call timed under its kind."""

    def __init__(self, port: int, tokens: dict, catalog: dict, staff: dict, rng: random.Random):
        self.port, self.tokens, self.catalog, self.staff = port, tokens, catalog, staff
        self.rng = rng
        self.apis: dict[str, Api] = {}
        self.timings: list[tuple[str, float]] = []

    def call(self, kind: str, user: str, method: str, path: str, body=None, expect: int = 200):
        if user not in self.apis:
            self.apis[user] = Api(self.port, self.tokens[user])
        answer, seconds = self.apis[user].call(method, path, body, expect)
        self.timings.append((kind, seconds))
        return answer

    def close(self) -> None:
        for api in self.apis.values():
            api.close()

    def walk(self, plan: Plan) -> int:
        """Register the case and run its path's steps; returns the case id once checked."""
        agent = plan.customer["n1_agent"]
        number = self.rng.randrange(10**5, 10**6)
        case = self.call("register", agent, "POST", "/api/cases", {
            "customer_id": plan.customer["id"], "product": plan.product,
            "typology": plan.typology, "channel": _pick(self.rng, CHANNELS),
            "impact": _pick(self.rng, IMPACTS), "subject": f"{plan.typology} - ref. {number}",
            "description": f"El cliente reporta: {plan.typology} (operación {number})."},
            expect=201)
        for who, data in PATHS[plan.path][1]:
            if who == "message":
                self.call("message", agent, "POST", "/api/messages/customer_info",
                          {"correlation": {"case_id": case["case_id"]}, "payload": data},
                          expect=202)
            else:
                self.complete(self.user(who, plan), case["instance_id"], self.form(data, plan))
        self.check(plan, case["case_id"])
        return case["case_id"]

    def user(self, who: str, plan: Plan) -> str:
        if who == "n1":
            return plan.customer["n1_agent"]
        product = plan.true_product if who == "n2_true" else plan.product
        group = self.catalog[product]["n3_group" if who == "n3" else "n2_group"]
        return self.rng.choice(self.staff[group])

    @staticmethod
    def form(data: dict, plan: Plan) -> dict:
        if data.get("action") == "misrouted":
            return {**data, "correct_product": plan.true_product}
        return data

    def complete(self, user: str, instance_id: int, data: dict) -> None:
        """Complete the one open task of the instance, as `user` (who must see it)."""
        tasks = self.call("list_tasks", user, "GET", f"/api/tasks?instance_id={instance_id}")
        if tasks["total"] != 1:
            raise ApiError(f"instance {instance_id}: {user} sees {tasks['total']} open tasks")
        self.call("complete", user, "POST", f"/api/tasks/{tasks['items'][0]['id']}/complete",
                  {"data": data})

    def check(self, plan: Plan, case_id: int) -> None:
        case = self.call("case", plan.customer["n1_agent"], "GET", f"/api/cases/{case_id}")
        expected = ("resolved", RESOLVED_TIER[plan.path], plan.true_product or plan.product,
                    plan.path == "incident")
        found = (case["status"], case["resolved_tier"], case["product"], case["became_incident"])
        if found != expected:
            raise ApiError(f"case {case_id} ({plan.path}): {found}, expected {expected}")


def support_loop(port: int, tokens: dict, setup: dict, seed: int, seconds: float,
                 start_at: float, warmup: int = 0) -> LoopResult:
    """Walk cases until `seconds` after `start_at` (a time.time()); the first `warmup` cases
    are walked before it and not recorded. Samples: each call's seconds under its kind, each
    case's under "case_walk" and "path:<name>"."""
    rng = random.Random(seed)
    walker = Walker(port, tokens, setup["catalog"], setup["staff"], rng)
    for _ in range(warmup):
        walker.walk(draw(rng, setup["catalog"], setup["customers"]))
    time.sleep(max(0.0, start_at - time.time()))
    result = LoopResult(first=time.time())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(result.errors) <= 20:
        _one_case(walker, draw(rng, setup["catalog"], setup["customers"]), result)
    result.last = time.time()
    walker.close()
    return result


def _one_case(walker: Walker, plan: Plan, result: LoopResult) -> None:
    walker.timings.clear()
    began = time.perf_counter()
    try:
        walker.walk(plan)
    except (ApiError, OSError, http.client.HTTPException) as exc:
        result.errors.append(f"{plan.path}: {str(exc)[:300]}")
    else:
        result.done += 1
        for name in ("case_walk", f"path:{plan.path}"):
            result.samples.setdefault(name, []).append(time.perf_counter() - began)
    for kind, seconds in walker.timings:
        result.samples.setdefault(kind, []).append(seconds)
