"""The discrete-event simulation: every case action at its simulated time, through the REST
API, in chronological order from a heap."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import quote

import time_machine

from app import create_app
from app.domain.business_time import add_business_time
from workers.ticker import Ticker

from .cases import Case
from .mix import (
    ANSWER_MINUTES,
    CALENDAR,
    CONFIRM_DELAY,
    N1_DELAY,
    N2_DELAY,
    N3_DELAY,
    PRODUCTS,
    REOPEN_MINUTES,
    TICK,
)
from .team import _tokens, team_spec
from .timings import delay, n2_pace

TEXTS = {
    "question": ("Referencia y fecha de la operación", "Soporte del archivo enviado"),
    "info": ("Adjunto el soporte solicitado", "Enviamos la captura del error por correo"),
    "escalate": ("Requiere revisión de operaciones", "Requiere validación en el sistema"),
    "solution": ("Se aplicó el ajuste y se confirmó con el cliente", "Se reprocesó la operación"),
    "incident": ("Falla de la plataforma que afecta a varios clientes", "Error en la interfaz"),
    "fix": ("Se liberó el bloqueo y se reprocesó el lote", "Configuración corregida"),
    "reopen": ("El problema volvió a presentarse", "La solución no funcionó"),
}


class DemoError(RuntimeError):
    """The API answered something the simulation did not expect."""


class Simulation:
    def __init__(self, ctx, rng, echo):
        self.rng, self.echo = rng, echo
        self.client = create_app(context=ctx).test_client()
        self.ticker = Ticker(ctx, ctx.dispatcher)
        self.tokens = _tokens(ctx, {"supervisor": ("operator", [])})
        self.catalog = {p["name"]: {"n2_group": p["n2_group"], "n3_group": p["n3_group"],
                                    "typologies": {t["name"]: t["n1_resolvable"]
                                                   for t in p["typologies"]}}
                        for p in self.call("supervisor", "get", "/api/products")["items"]
                        if p["active"] and p["typologies"] and p["n2_group"]}
        self.spec = team_spec(self.catalog)
        self.tokens |= _tokens(ctx, self.spec)
        self.queue, self.order, self.counts = [], itertools.count(), Counter()

    def staff(self, group: str) -> list[str]:
        return [u for u, (_, groups) in self.spec.items() if group in groups]

    def request(self, user: str, method: str, url: str, **kwargs):
        return getattr(self.client, method)(
            url, headers={"Authorization": f"Bearer {self.tokens[user]}"}, **kwargs)

    def call(self, user: str, method: str, url: str, expected=(200,), **kwargs):
        response = self.request(user, method, url, **kwargs)
        if response.status_code not in expected:
            raise DemoError(f"{method.upper()} {url} as {user}: {response.status_code} "
                            f"{response.get_data(as_text=True)[:500]}")
        return response.get_json()

    def customers(self, customers: list[dict]) -> list[dict]:
        """Create the customers; a NIT that exists keeps its record and is used as it is."""
        kept = []
        for customer in customers:
            created = self.request("supervisor", "post", "/api/customers", json=customer)
            if created.status_code == 409:
                customer = self.call("supervisor", "get", f"/api/customers/{customer['id']}")
            elif created.status_code != 201:
                raise DemoError(f"customer {customer['id']}: {created.get_data(as_text=True)}")
            if customer.get("n1_agent") in self.tokens and customer.get("email"):
                kept.append({k: customer[k] for k in ("id", "segment", "n1_agent")})
        return kept

    def run(self, cases: list[Case], start: datetime, end: datetime, months: int) -> None:
        """Every event in time order, the clock moved to each; a ticker pass every hour."""
        self.end, self.started = end, time.perf_counter()
        for case in cases:
            self.schedule(case.at, "register", case)
        self.schedule(start, "tick")
        marks = [start + (end - start) * (m + 1) / months for m in range(months)]
        with time_machine.travel(start, tick=False) as clock:
            while self.queue:
                at, _, kind, case = heapq.heappop(self.queue)
                while marks and at >= marks[0]:
                    self.progress(months - len(marks) + 1, months, marks.pop(0))
                clock.move_to(at)
                getattr(self, kind)(at, case)
            clock.move_to(end)
            self.ticker.tick()
        while marks:
            self.progress(months - len(marks) + 1, months, marks.pop(0))

    def progress(self, month: int, months: int, until: datetime) -> None:
        self.echo(f"month {month}/{months} (to {until:%Y-%m-%d}): "
                  f"{self.counts['register']} registered, {self.counts['resolved']} resolutions, "
                  f"{self.counts['reopen']} reopened, {time.perf_counter() - self.started:.0f}s")

    def schedule(self, at: datetime, kind: str, case: Case | None = None) -> None:
        if at <= self.end:  # later actions are still to come: those cases stay open
            heapq.heappush(self.queue, (at, next(self.order), kind, case))

    def after(self, at: datetime, kind: str, case: Case, minutes: float | None = None) -> None:
        """Schedule `kind` some business minutes later (by default: that tier's work time)."""
        if minutes is None:
            spec = {"n1": N1_DELAY, "n3": N3_DELAY, "confirm": CONFIRM_DELAY}.get(kind)
            pace = n2_pace(PRODUCTS.get(case.product, (1, 12.0))[1])
            minutes = delay(self.rng, spec) if spec else delay(self.rng, N2_DELAY, pace)
        self.schedule(add_business_time(at, minutes, CALENDAR).astimezone(UTC), kind, case)

    def text(self, kind: str) -> str:
        return self.rng.choice(TEXTS[kind])

    def complete(self, user: str, case: Case, data: dict) -> None:
        tasks = self.call(user, "get", f"/api/tasks?instance_id={case.instance_id}")
        if tasks["total"] != 1:
            raise DemoError(f"case {case.case_id}: {user} sees {tasks['total']} open tasks")
        self.call(user, "post", f"/api/tasks/{tasks['items'][0]['id']}/complete",
                  json={"data": data})

    def member(self, tier: str, case: Case) -> str:
        return self.rng.choice(self.staff(self.catalog[case.product][tier]))

    def resolved(self, at: datetime, case: Case) -> None:
        self.counts["resolved"] += 1
        if case.reopen:
            case.reopen = False
            self.after(at, "reopen_case", case, self.rng.uniform(*REOPEN_MINUTES))

    # one method per kind of event -----------------------------------------------------
    def tick(self, at: datetime, _case) -> None:
        self.ticker.tick()
        self.schedule(at + TICK, "tick")

    def register(self, at: datetime, case: Case) -> None:
        self.counts["register"] += 1
        number = self.rng.randrange(10**5, 10**6)
        created = self.call(case.customer["n1_agent"], "post", "/api/cases", (201,), json={
            "customer_id": case.customer["id"], "product": case.product,
            "typology": case.typology, "channel": case.channel, "impact": case.impact,
            "subject": f"{case.typology} - ref. {number}",
            "description": f"El cliente reporta: {case.typology.lower()} en {case.product} "
                           f"(operación {number})."})
        case.case_id, case.instance_id = created["case_id"], created["instance_id"]
        self.after(at, "n1", case)

    def n1(self, at: datetime, case: Case) -> None:
        agent = case.customer["n1_agent"]
        if case.ask_info:
            case.ask_info = False
            self.complete(agent, case, {"action": "request_info",
                                        "question": self.text("question")})
            return self.after(at, "answer", case, self.rng.uniform(*ANSWER_MINUTES))
        if case.path == "n1":
            self.complete(agent, case, {"action": "resolve", "solution": self.text("solution")})
            return self.resolved(at, case)
        self.complete(agent, case, {"action": "escalate", "reason": self.text("escalate")})
        self.after(at, "n2", case)

    def answer(self, at: datetime, case: Case) -> None:
        self.call(case.customer["n1_agent"], "post", "/api/messages/customer_info", (202,),
                  json={"correlation": {"case_id": case.case_id},
                        "payload": {"info": self.text("info")}})
        self.after(at, "n1", case)

    def n2(self, at: datetime, case: Case) -> None:
        user = self.member("n2_group", case)
        if case.path == "misroute" and case.product != case.true_product:
            case.product = case.true_product
            self.complete(user, case, {"action": "misrouted", "correct_product": case.product,
                                       "reason": f"Corresponde a {case.product}"})
            return self.after(at, "n2", case)
        if case.path == "incident":
            self.complete(user, case, {"action": "incident", "reason": self.text("incident")})
            return self.after(at, "n3", case)
        self.complete(user, case, {"action": "resolve", "solution": self.text("solution")})
        self.resolved(at, case)

    def n3(self, at: datetime, case: Case) -> None:
        self.complete(self.member("n3_group", case), case,
                      {"diagnosis": self.text("incident"), "fix": self.text("fix")})
        self.after(at, "confirm", case)

    def confirm(self, at: datetime, case: Case) -> None:
        self.complete(self.member("n2_group", case), case,
                      {"confirmed": True, "solution": self.text("solution")})
        self.resolved(at, case)

    def reopen_case(self, at: datetime, case: Case) -> None:
        """Back to the tier that resolved it (the 5-business-day window is still open)."""
        self.counts["reopen"] += 1
        self.call(case.customer["n1_agent"], "post", f"/api/cases/{case.case_id}/reopen",
                  json={"reason": self.text("reopen")})
        self.after(at, {"n1": "n1", "incident": "n3"}.get(case.path, "n2"), case)

    def summary(self, start: datetime, end: datetime) -> dict:
        """KPIs of the window (overall and by product) and the database's cases by status."""
        window = f"from={quote(start.isoformat())}&to={quote(end.isoformat())}"
        kpis = self.call("supervisor", "get", f"/api/kpis?{window}")
        return {"kpis": kpis, "by_product": {
            product: self.call("supervisor", "get", f"/api/kpis?{window}&product={quote(product)}")
            for product in kpis["by_product"]}, "by_status": {
            status: self.call("supervisor", "get", f"/api/cases?status={status}&per_page=1")[
                "total"] for status in ("open", "waiting_customer", "resolved", "closed")}}
