"""`clientconnect demo-data`: a realistic support dataset, made by driving the real API.

A discrete-event simulation over the past months: case registrations over business days
(mostly 08:00-18:00 Bogota), then every later action (N1/N2/N3 work, misroute returns,
customer answers, reopens) at a later simulated time, in chronological order from a heap.
The clock is moved to each action with time-machine, so created_at, due dates, resolutions,
emails and the BPMN timers (the 5-business-day reopen window, then the close) all happen at
simulated times. Everything goes through the REST API (Flask test client, bearer tokens of
real users); only the setup (users, tokens, reference data, deploy) calls services.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import time
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import time_machine
from sqlalchemy import select

from app import create_app
from app.config import Settings
from app.domain.access import SYSTEM
from app.domain.calendar import BusinessCalendar, add_business_time
from app.domain.errors import Conflict
from app.persistence.models import ProcessDefinition
from app.services import deploy, jobs, reference, users
from app.services.context import build_context
from app.services.processes import SUPPORT_PROCESS
from workers.queue import SyncDispatcher
from workers.ticker import Ticker

# --- the mix: shares of all cases ---------------------------------------------------
FIRST_CONTACT = 0.35  # resolved by N1 at first contact (an N1-resolvable typology)
MISROUTE = 0.10       # filed under the wrong product: N2 returns it, the right group resolves
INCIDENT = 0.12       # N2 reclassifies it as an incident: N3 fixes, N2 confirms
#                       the rest (~43%; ~53% with the misroutes) is resolved by N2
INFO_REQUEST = 0.08   # N1 first asks the customer, who answers 1-24 business hours later
REOPEN = 0.03         # the customer reopens it inside the 5-business-day window
REINCIDENCE = 0.08    # same customer, product and typology as a case of the last 30 days
IMPACTS = {"one_user": 80, "several_users": 15, "whole_service": 5}
CHANNELS = {"email": 40, "phone": 25, "portal": 20, "chat": 15}
# product: (weight, target mean resolution in business hours; the SLAs are in sla.dmn)
PRODUCTS = {
    "Pagos": (24, 15.0),            # thesis: 1.5 days against a 1-day SLA
    "Sucursal Digital": (20, 9.2),  # thesis: 9.2 hours against 8
    "Recaudos": (11, 14.0), "Conexión Directa": (9, 7.0), "Depósitos": (8, 24.0),
    "Tarjetas": (8, 12.0), "Adquirencia": (6, 13.0), "Pasarela de Pagos": (6, 12.0),
    "Swift": (5, 16.0), "Transporte de Efectivo": (3, 15.0),
}
# delays in business minutes: (median, sigma) of a lognormal, clipped to [low, high]
N1_DELAY = (40, 0.9, 3, 480)       # minutes to a few hours
N2_DELAY = (300, 0.8, 30, 3000)    # hours to 1-3 days, times the product's pace (n2_pace)
N3_DELAY = (1200, 0.5, 600, 3000)  # 1-5 days
CONFIRM_DELAY = (60, 0.6, 10, 600)
ANSWER_MINUTES = (60, 1440)        # the customer answers after 1-24 business hours
REOPEN_MINUTES = (120, 2400)       # the customer reopens after 2 h - 4 days (window: 5)
# segment: (share of customers, value ranks, case activity, sensitivity weights low/med/high)
SEGMENTS = {
    "personas": (0.15, (60, 100), 0.6, (6, 3, 1)),
    "pyme": (0.30, (40, 90), 1.0, (5, 4, 1)),
    "empresas": (0.33, (15, 60), 1.8, (3, 5, 2)),
    "corporativo": (0.22, (1, 30), 3.0, (1, 4, 5)),
}
CUSTOMERS, POSVENTA, MANAGERS, PASSWORD = 300, 6, 4, "demo1234"
HOURS = (0, 0, 0, 0, 0, 1, 2, 4, 9, 12, 13, 11, 6, 7, 11, 11, 9, 6, 3, 2, 1, 1, 0, 0)  # Bogota
WEEKDAYS = (1.2, 1.1, 1.0, 1.0, 0.9)  # Monday to Friday
TICK = timedelta(hours=1)
CALENDAR = BusinessCalendar.default()

HEADS = ("Inversiones", "Comercializadora", "Distribuidora", "Transportes", "Constructora",
         "Industrias", "Agroindustrial", "Logística", "Laboratorios", "Textiles", "Alimentos",
         "Grupo Empresarial", "Importadora", "Servicios Integrales", "Tecnología", "Minera")
PLACES = ("Andina", "del Valle", "El Dorado", "La Sabana", "Santandereana", "del Caribe",
          "Antioqueña", "Los Andes", "del Pacífico", "Nevado", "Magdalena", "Tequendama",
          "Cafetera", "Boyacense", "Llanera", "Altamira", "San Jorge", "del Sinú", "Quimbaya",
          "Tayrona", "Guadalupe", "Chicamocha", "Cauca", "Orinoco")
LEGAL = ("S.A.S.", "S.A.", "Ltda.", "S.A.S.", "& Cía. S.A.S.")
FIRST = ("María", "José", "Luis", "Ana", "Carlos", "Luz", "Jorge", "Sandra", "Andrés",
         "Claudia", "Juan", "Diana", "Camilo", "Paola", "Alejandro", "Natalia")
LAST = ("Rodríguez", "Gómez", "González", "Martínez", "García", "López", "Hernández", "Ríos",
        "Ramírez", "Pérez", "Díaz", "Torres", "Rojas", "Vargas", "Moreno", "Ospina", "Zapata")
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


# --- drawing the dataset (pure: a seeded random.Random in, plain values out) ----------
def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def delay(rng: random.Random, spec: tuple, scale: float = 1.0) -> float:
    median, sigma, low, high = spec
    return min(high * scale, max(low, median * scale * rng.lognormvariate(0, sigma)))


def n2_pace(target_hours: float) -> float:
    """The N2 delay factor giving a product a mean resolution of about `target_hours`."""
    def mean(spec):
        return spec[0] * math.exp(spec[1] ** 2 / 2)
    base = (mean(N1_DELAY) + INFO_REQUEST * (sum(ANSWER_MINUTES) / 2 + mean(N1_DELAY))
            + INCIDENT * (mean(N3_DELAY) + mean(CONFIRM_DELAY)))
    return max(0.2, (target_hours * 60 - base) / (mean(N2_DELAY) * (1 - FIRST_CONTACT + MISROUTE)))


def nit(rng: random.Random) -> str:
    """A company NIT with its DIAN check digit."""
    base = rng.choice(("800", "830", "860", "890", "900", "901")) + f"{rng.randrange(10**6):06d}"
    weights = (3, 7, 13, 17, 19, 23, 29, 37, 41)
    rest = sum(int(d) * w for d, w in zip(reversed(base), weights, strict=True)) % 11
    return f"{base}-{rest if rest < 2 else 11 - rest}"


def _words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in plain if c.isalnum() or c == " ").split()


def make_customers(rng, count: int, agents: list[str], managers: list[str]) -> list[dict]:
    """`count` customers of every segment, with unique NITs and emails."""
    segments = [s for s, spec in SEGMENTS.items() for _ in range(max(1, round(spec[0] * count)))]
    taken, customers = set(), []
    for index, segment in enumerate(segments[:count]):
        _, (low, high), _, sensitivity = SEGMENTS[segment]
        for _ in range(100):
            name, ident, email = _person(rng, index) if segment == "personas" else _company(rng)
            if not taken & {ident, email}:
                break
        taken |= {ident, email}
        customers.append({
            "id": ident, "name": name, "segment": segment, "value_rank": rng.randint(low, high),
            "sensitivity": rng.choices(("low", "medium", "high"), weights=sensitivity)[0],
            "n1_agent": rng.choice(agents), "email": email,
            "account_manager": None if segment == "personas" else rng.choice(managers)})
    return customers


def _company(rng) -> tuple[str, str, str]:
    head, place = rng.choice(HEADS), rng.choice(PLACES)
    mailbox = rng.choice(("tesoreria", "operaciones", "pagos", "contabilidad"))
    return (f"{head} {place} {rng.choice(LEGAL)}", nit(rng),
            f"{mailbox}@{'-'.join(_words(f'{head} {place}'))}.example")


def _person(rng, index: int) -> tuple[str, str, str]:
    first, last, second = rng.choice(FIRST), rng.choice(LAST), rng.choice(LAST)
    ident = str(rng.choice((10, 52, 79, 80)) * 10**8 + rng.randrange(10**8))  # a cédula
    return (f"{first} {last} {second}", ident,
            f"{'.'.join(_words(f'{first} {last}'))}{index}@correo.example")


def registration_times(rng, start: datetime, end: datetime, months: int, per_month: int):
    """`per_month` instants in each of `months` equal slices of [start, end): business days
    (Mondays busiest), Bogota hours weighted by HOURS (a few before 8:00 or after 18:00)."""
    span, times = (end - start) / months, []
    for month in range(months):
        low, high = start + month * span, start + (month + 1) * span
        first = low.astimezone(CALENDAR.zone).date()
        days = [d for d in (first + timedelta(days=n) for n in range((high - low).days + 2))
                if CALENDAR.is_working_day(d)]
        weights, drawn = [WEEKDAYS[d.weekday()] for d in days], []
        while len(drawn) < per_month:
            day = rng.choices(days, weights=weights)[0]
            hour = rng.choices(range(24), weights=HOURS)[0]
            local = datetime(day.year, day.month, day.day, hour, tzinfo=CALENDAR.zone)
            at = (local + timedelta(seconds=rng.randrange(3600))).astimezone(UTC)
            if low <= at < high:
                drawn.append(at)
        times += sorted(drawn)
    return times


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


# --- setup: model, reference data, team ----------------------------------------------
def _ensure_model(ctx) -> None:
    with ctx.unit() as session:
        deployed = session.scalar(select(ProcessDefinition.id).where(
            ProcessDefinition.process_key == SUPPORT_PROCESS).limit(1))
    folder = ctx.settings.bpmn_dir / SUPPORT_PROCESS
    if deployed is None:
        deploy.deploy(ctx, SYSTEM, {f"{SUPPORT_PROCESS}/{p.name}": p.read_bytes()
                                    for p in sorted(folder.iterdir())
                                    if p.suffix in (".bpmn", ".dmn")})
    if not reference.has_products(ctx):
        data = json.loads((folder / "reference.json").read_text(encoding="utf-8-sig"))
        reference.load_reference(ctx, SYSTEM, data)


def team_spec(catalog: dict) -> dict[str, tuple[str, list[str]]]:
    """username: (role, groups): an operator, post-sale agents, account managers, one agent per
    segment strategy group, 2 agents per N2 group and 1 per N3 group (2 when it serves several
    products)."""
    spec = {"supervisor": ("operator", [])}
    spec |= {f"posventa{i}": ("agent", ["posventa"]) for i in range(1, POSVENTA + 1)}
    spec |= {f"gerente{i}": ("agent", ["gerentes_cuenta"]) for i in range(1, MANAGERS + 1)}
    spec |= {f"estrategia_{s}": ("agent", [f"estrategia_{s}"]) for s in SEGMENTS}
    for group in sorted({item["n2_group"] for item in catalog.values()}):
        spec |= {f"{group}_{i}": ("agent", [group]) for i in (1, 2)}
    for group, products in sorted(Counter(i["n3_group"] for i in catalog.values()).items()):
        spec |= {f"{group}_{i}": ("agent", [group]) for i in range(1, min(products, 2) + 1)}
    return spec


def _tokens(ctx, spec: dict) -> dict[str, str]:
    for username, (role, groups) in spec.items():
        with suppress(Conflict):  # a second run reuses the team
            users.create_user(ctx, username, PASSWORD, role, groups)
    return {username: users.create_token(ctx, username) for username in spec}


# --- the simulation ---------------------------------------------------------------
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


def generate(settings: Settings, months: int = 3, per_month: int = 816, seed: int = 7,
             until: datetime | None = None, echo=print) -> dict:
    """Generate the dataset over [until - months, until) (until: now); returns the summary.

    Mail goes to the outbox whatever SMTP says (the customers are made up), and the demo
    accounts, whose password is public, are hashed with argon2's cheapest profile."""
    started = time.perf_counter()
    settings = settings.with_overrides(smtp_host=None, password_profile="CHEAPEST")
    ctx = build_context(settings)
    ctx.dispatcher = SyncDispatcher(lambda job_id: jobs.run(ctx, job_id))
    try:
        _ensure_model(ctx)
        rng = random.Random(seed)
        sim = Simulation(ctx, rng, echo)
        customers = sim.customers(make_customers(rng, CUSTOMERS, sim.staff("posventa"),
                                                 sim.staff("gerentes_cuenta")))
        end = (until or datetime.now(UTC)).astimezone(UTC)
        start = end - timedelta(days=round(30.4 * months))
        echo(f"{len(sim.spec)} users (password {PASSWORD}), {len(customers)} customers; "
             f"simulating {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC")
        cases = plan_cases(rng, sim.catalog, customers,
                           registration_times(rng, start, end, months, per_month))
        sim.run(cases, start, end, months)
        return {**sim.summary(start, end), "cases": len(cases), "start": start, "end": end,
                "elapsed_seconds": round(time.perf_counter() - started, 1)}
    finally:
        ctx.sessions.kw["bind"].dispose()


def report(summary: dict, echo=print) -> None:
    """The summary as `clientconnect demo-data` prints it."""
    kpis = summary["kpis"]
    echo(f"\n{summary['cases']} cases over {summary['start']:%Y-%m-%d} - "
         f"{summary['end']:%Y-%m-%d}; {kpis['resolved']} resolved in the window")
    echo("by status (whole database): " + ", ".join(
        f"{status} {count}" for status, count in summary["by_status"].items()))
    echo("by product: cases, mean resolution (business hours), SLA compliance")
    for product, figures in summary["by_product"].items():
        values = figures["indicators"]
        echo(f"  {product:<24}{figures['cases']:>6}"
             f"{_figure(values['mean_resolution_business_hours']['value'], ' h'):>10}"
             f"{_figure(values['ans_compliance_pct']['value'], ' %'):>10}")
    echo("KPIs: " + ", ".join(f"{name} {_figure(item['value'], '')}"
                              for name, item in kpis["indicators"].items()))
    echo(f"elapsed: {summary['elapsed_seconds']} s")


def _figure(value, unit: str) -> str:
    return "-" if value is None else f"{value:.1f}{unit}"
