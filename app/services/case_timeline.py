"""Keeps a support case in step with its support_case instance and writes its timeline.

Registered as the listener of the support_case process: after every engine step it copies the
process variables onto the case row and appends one timeline entry per hand-off it sees
(who, when, why), comparing the row before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.persistence.crm import CaseEvent, SupportCase
from app.persistence.models import Task

from . import sla

COPIED = ("priority", "product", "typology", "n2_group", "n3_group", "reprocess_count",
          "became_incident", "escalated", "resolved_tier", "reopen_count", "sla_minutes", "tier")


def project(session, instance, snap, actor: str | None, cause: dict) -> None:
    """The support_case listener (see Context.listeners)."""
    case = session.get(SupportCase, snap.variables.get("case_id"))
    if case is None:
        return
    before = _facts(case)
    _copy(case, snap.variables)
    case.status = snap.variables.get("case_status") or case.status
    _copy_sla(case, snap.variables)
    _count_ola(session, case, snap.variables, cause)
    sla.link_instance(session, case, instance.id)
    for kind, from_tier, to_tier, reason in _handoffs(before, _facts(case), cause):
        add_entry(session, case, actor, kind, from_tier, to_tier, reason,
                  _detail(kind, case, cause))


def _copy_sla(case: SupportCase, variables: dict) -> None:
    case.calendar_def = variables.get("sla_calendar_def") or case.calendar_def
    case.sla_pauses = list(variables.get("sla_pauses") or [])
    case.sla_paused_minutes = float(variables.get("sla_paused_minutes") or 0.0)
    waiting = case.status == "waiting_customer"
    case.sla_paused_since = _instant(variables.get("sla_paused_since")) if waiting else None
    sla.refresh(case)


TIER_TASKS = {"n2_review": "N2", "n2_confirm": "N2", "n3_fix": "N3"}


def _count_ola(session, case: SupportCase, variables: dict, cause: dict) -> None:
    """Internal targets of N2 and N3, measured apart: business time their tasks were open."""
    ola = {tier: dict(values) for tier, values in (case.ola or {}).items()}
    for tier, name in (("N2", "ola_n2_minutes"), ("N3", "ola_n3_minutes")):
        if variables.get(name):
            ola.setdefault(tier, {"spent": 0.0})["target"] = variables[name]
    tier = TIER_TASKS.get(cause.get("task"))
    task = session.get(Task, cause["task_id"]) if tier and cause.get("task_id") else None
    if task is not None:
        spent = sla.business_minutes(case, task.created_at, task.completed_at)
        ola.setdefault(tier, {"spent": 0.0})["spent"] = ola[tier].get("spent", 0.0) + spent
    case.ola = ola


def _copy(case: SupportCase, variables: dict) -> None:
    for name in COPIED:
        if variables.get(name) is not None:
            setattr(case, name, variables[name])
    case.calendar = variables.get("sla_calendar") or case.calendar
    for name in ("due_at", "resolved_at", "closed_at"):
        value = _instant(variables.get(name))
        if value is not None:
            setattr(case, name, value)
    case.instance_id = case.instance_id or variables.get("instance_id")


def _instant(value) -> datetime | None:
    """An ISO datetime variable as a UTC datetime (None when absent or not a datetime)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment and moment.tzinfo else None


def _facts(case: SupportCase) -> dict:
    return {"tier": case.tier, "status": case.status, "reprocess": case.reprocess_count or 0,
            "reopen": case.reopen_count or 0, "group": case.n2_group}


def _handoffs(old: dict, new: dict, cause: dict) -> list[tuple]:
    """(kind, from tier, to tier, reason) for each change, in the order they happened."""
    data = cause.get("data") or cause.get("payload") or {}
    found = []
    if new["reopen"] > old["reopen"]:
        found.append(("reopened", None, new["tier"], data.get("reopen_reason")))
    if old["status"] != "waiting_customer" and new["status"] == "waiting_customer":
        found.append(("info_requested", old["tier"], old["tier"], data.get("question")))
    if old["status"] == "waiting_customer" and new["status"] != "waiting_customer":
        found.append(("info_received", new["tier"], new["tier"], data.get("info")))
    found += _tier_changes(old, new, data)
    if old["status"] != "resolved" and new["status"] == "resolved":
        found.append(("resolved", new["tier"], None, data.get("solution")))
    if old["status"] != "closed" and new["status"] == "closed":
        found.append(("closed", None, None, None))
    return found


def _tier_changes(old: dict, new: dict, data: dict) -> list[tuple]:
    moves = {("N1", "N2"): "escalated", ("N2", "N3"): "reclassified_incident",
             ("N3", "N2"): "fixed"}
    found = []
    if new["reprocess"] > old["reprocess"]:
        found.append(("returned_misrouted", "N2", "N2", data.get("reason")))
    kind = moves.get((old["tier"], new["tier"]))
    if kind and new["reopen"] == old["reopen"]:
        found.append((kind, old["tier"], new["tier"], data.get("reason") or data.get("fix")))
    return found


def _detail(kind: str, case: SupportCase, cause: dict) -> dict:
    detail = {"product": case.product, "typology": case.typology}
    if kind in ("escalated", "returned_misrouted"):
        detail["to_group"] = case.n2_group
    if kind == "fixed":
        data = cause.get("data") or {}
        detail.update(diagnosis=data.get("diagnosis"), fix=data.get("fix"))
    return detail


def add_entry(session, case: SupportCase, actor, kind, from_tier=None, to_tier=None,
              reason=None, detail=None) -> None:
    session.add(CaseEvent(case_id=case.id, actor=actor, kind=kind, from_tier=from_tier,
                          to_tier=to_tier, reason=reason, detail=detail or {}))
