"""The escalation ladder seen from the case: the sla_watch process's listener.

When the watch climbs a step it records it on the case timeline, raises the priority of the
case and its open tasks at a breach, and e-mails the people concerned (through the outbox, so
a failing mail server delays nothing and is retried).
"""

from __future__ import annotations

from sqlalchemy import select

from app.domain.states import JobKind, JobStatus, TaskStatus
from app.persistence import task_rows
from app.persistence.crm import CaseInstance, Customer, SupportCase
from app.persistence.models import Job, Task, User, utcnow

from . import sla
from .case_timeline import add_entry

SUBJECTS = {
    "warning": "Caso {id}: 75% del ANS consumido",
    "breached": "Caso {id}: ANS incumplido, acompañamiento requerido",
    "critical": "Caso {id}: 150% del ANS, priorización de la estrategia del segmento",
}


def project(session, instance, snap, actor: str | None, cause: dict) -> list[int]:
    """The sla_watch listener (see Context.listeners); returns the notification jobs."""
    case = session.get(SupportCase, snap.variables.get("case_id"))
    if case is None:
        return []
    sla.link_instance(session, case, instance.id)
    case.sla_instance_id = case.sla_instance_id or instance.id
    step = snap.variables.get("sla_step") or "none"
    if step in ("none", case.sla_step):
        return []
    case.sla_step = step
    by = snap.variables.get("sla_escalated_by") if cause.get("message") == "sla_escalate" else None
    if step == "breached":
        _raise_priority(session, case, snap.variables.get("priority_rank"))
    notified, jobs = _notify(session, case, instance.id, step)
    reason = (cause.get("payload") or {}).get("reason") if by else None
    add_entry(session, case, by or actor, f"sla_{step}", case.tier, case.tier, reason,
              {"notified": notified, "manual": bool(by), "priority": case.priority})
    return jobs


def _raise_priority(session, case: SupportCase, rank) -> None:
    if not isinstance(rank, int):
        return
    case.priority = f"P{rank}"
    instances = session.scalars(select(CaseInstance.instance_id).where(
        CaseInstance.case_id == case.id)).all()
    task_rows.raise_priority(session, list(instances), rank)


def _open_tasks(session, case: SupportCase) -> list[Task]:
    instances = select(CaseInstance.instance_id).where(CaseInstance.case_id == case.id)
    return list(session.scalars(select(Task).where(Task.instance_id.in_(instances),
                                                   Task.status == TaskStatus.OPEN)))


def _recipients(session, case: SupportCase, step: str) -> list[str]:
    customer = case_customer(session, case)
    if step == "warning":
        names = {t.assignee for t in _open_tasks(session, case) if t.assignee}
        names.add(customer.n1_agent)
    else:
        names = {customer.account_manager}
    return sorted(n for n in names if n)


def case_customer(session, case: SupportCase) -> Customer:
    return session.get(Customer, case.customer_id)


def _notify(session, case: SupportCase, instance_id: int, step: str):
    """E-mail the people concerned; returns their usernames and the outbox job ids."""
    names = _recipients(session, case, step)
    emails = sorted(e for e in session.scalars(select(User.email).where(User.username.in_(names)))
                    if e)
    if not emails:
        return names, []
    body = (f"Caso {case.id} ({case.product} - {case.typology}), prioridad {case.priority}, "
            f"vence {case.due_at:%Y-%m-%d %H:%M} UTC. Nivel actual: {case.tier}.")
    job = Job(instance_id=instance_id, kind=JobKind.NOTIFY, spiff_task_id="-",
              element_id=f"sla_{step}", status=JobStatus.PENDING, due_at=utcnow(),
              payload={"operation": "send_email", "params": {
                  "to": emails, "subject": SUBJECTS[step].format(id=case.id), "body": body}})
    session.add(job)
    session.flush()
    return names, [job.id]
