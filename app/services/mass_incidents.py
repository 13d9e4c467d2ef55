"""Proactive monitoring: many cases of one product in a short window become one major incident.

The incident runs as a `major_incident` process (a task for the product's N3 team); every case
linked to it is resolved with the one action that resolves the incident, and its customers are
told proactively when they are linked.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.domain.states import JobKind, JobStatus
from app.persistence.crm import Customer, MajorIncident, SupportCase
from app.persistence.models import Job, utcnow

from .case_timeline import add_entry
from .instances import latest_definition, launch, process_spec
from .processes import MAJOR_PROCESS, SUPPORT_PROCESS

OPEN_CASE = ("open", "waiting_customer")


def on_registered(ctx, session, case: SupportCase, actor: str) -> list[int]:
    """Link a new case to its product's open incident, or open one at the threshold."""
    incident = session.scalar(select(MajorIncident).where(
        MajorIncident.product == case.product, MajorIncident.status == "open"))
    if incident is not None:
        return _link(session, incident, [case], actor)
    recent = _recent_cases(ctx, session, case.product)
    if len(recent) < ctx.settings.mass_incident_cases:
        return []
    return _open(ctx, session, case.product, recent, actor)


def _recent_cases(ctx, session, product: str) -> list[SupportCase]:
    since = utcnow() - timedelta(minutes=ctx.settings.mass_incident_minutes)
    return list(session.scalars(select(SupportCase).where(
        SupportCase.product == product, SupportCase.created_at >= since,
        SupportCase.major_incident_id.is_(None), SupportCase.status.in_(OPEN_CASE))
        .order_by(SupportCase.id)))


def _open(ctx, session, product: str, cases: list[SupportCase], actor: str) -> list[int]:
    incident = MajorIncident(product=product, status="open", opened_at=utcnow())
    session.add(incident)
    session.flush()
    variables = {"major_incident_id": incident.id, "product": product,
                 "n3_group": _n3_group(ctx, session, product),
                 "case_ids": [c.id for c in cases]}
    definition = latest_definition(ctx, session, MAJOR_PROCESS)
    instance, jobs, _ = launch(ctx, session, definition, variables, f"major-{incident.id}", actor)
    incident.instance_id = instance.id
    return jobs + _link(session, incident, cases, actor)


def _n3_group(ctx, session, product: str) -> str | None:
    pspec = process_spec(ctx, latest_definition(ctx, session, SUPPORT_PROCESS))
    return ctx.engine.decide(pspec, "routing", {"product": product}).get("n3_group")


def _link(session, incident: MajorIncident, cases: list[SupportCase], actor: str) -> list[int]:
    jobs = []
    for case in cases:
        case.major_incident_id = incident.id
        add_entry(session, case, actor, "major_incident_linked", case.tier, case.tier, None,
                  {"major_incident_id": incident.id})
        jobs += _tell_customer(session, case, incident)
    return jobs


def _tell_customer(session, case: SupportCase, incident: MajorIncident) -> list[int]:
    customer = session.get(Customer, case.customer_id)
    if not customer.email or case.instance_id is None:
        return []
    job = Job(instance_id=case.instance_id, kind=JobKind.NOTIFY, spiff_task_id="-",
              element_id="major_incident", status=JobStatus.PENDING, due_at=utcnow(),
              payload={"operation": "send_email", "params": {
                  "to": [customer.email],
                  "subject": f"Caso {case.id}: incidente general en {case.product}",
                  "body": (f"Hola {customer.name}: detectamos una falla general en "
                           f"{case.product} que afecta su caso {case.id}. Nuestro equipo de "
                           "tecnología ya la atiende; le informaremos apenas quede resuelta.")}})
    session.add(job)
    session.flush()
    return [job.id]


def project(session, instance, snap, actor: str | None, cause: dict) -> list[int]:
    """The major_incident listener: once resolved, resolve every linked case with it."""
    if not snap.completed:
        return []
    incident = session.get(MajorIncident, snap.variables.get("major_incident_id"))
    if incident is None or incident.status != "open":
        return []
    incident.status, incident.resolved_at = "resolved", utcnow()
    incident.resolution = snap.variables.get("resolution")
    linked = _open_linked(session, incident)
    return [_resolve(session, instance.id, case, incident) for case in linked]


def _open_linked(session, incident: MajorIncident) -> list[SupportCase]:
    return list(session.scalars(select(SupportCase).where(
        SupportCase.major_incident_id == incident.id, SupportCase.status.in_(OPEN_CASE))))


def _resolve(session, instance_id: int, case: SupportCase, incident: MajorIncident) -> int:
    payload = {"case_id": case.id, "solution": incident.resolution,
               "resolution": incident.resolution}
    job = Job(instance_id=instance_id, kind=JobKind.MESSAGE, spiff_task_id="-",
              element_id="mass_resolved", status=JobStatus.PENDING, due_at=utcnow(),
              payload={"name": "mass_resolved", "payload": payload,
                       "correlation": {"case_id": case.id}})
    session.add(job)
    session.flush()
    return job.id
