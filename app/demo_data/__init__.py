"""`clientconnect demo-data`: a realistic support dataset, made by driving the real API.

A discrete-event simulation over the past months: case registrations over business days
(mostly 08:00-18:00 Bogota), then every later action (N1/N2/N3 work, misroute returns,
customer answers, reopens) at a later simulated time, in chronological order from a heap.
The clock is moved to each action with time-machine, so created_at, due dates, resolutions,
emails and the BPMN timers (the 5-business-day reopen window, then the close) all happen at
simulated times. Everything goes through the REST API (Flask test client, bearer tokens of
real users); only the setup (users, tokens, reference data, deploy) calls services.

The drawing of the dataset (pure) is in `mix`, `customers`, `timings` and `cases`; the
setup of the team in `team`; the simulation in `simulation`. This module drives them.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.config import Settings
from app.domain.access import SYSTEM
from app.persistence.models import ProcessDefinition
from app.services import deploy, jobs, reference
from app.services.context import build_context
from app.services.processes import SUPPORT_PROCESS
from workers.queue import SyncDispatcher

from .cases import plan_cases
from .customers import make_customers
from .mix import (
    CALENDAR,
    CUSTOMERS,
    FIRST_CONTACT,
    INCIDENT,
    MISROUTE,
    PASSWORD,
    PRODUCTS,
    SEGMENTS,
)
from .simulation import DemoError, Simulation
from .timings import registration_times

__all__ = [  # what `clientconnect demo-data` and the tests use from this module
    "CALENDAR",
    "FIRST_CONTACT",
    "INCIDENT",
    "MISROUTE",
    "PRODUCTS",
    "SEGMENTS",
    "DemoError",
    "generate",
    "make_customers",
    "plan_cases",
    "registration_times",
    "report",
]


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
