"""Plain dicts the services return; the API's schemas shape them for the wire."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.domain.access import Actor, can_see_task
from app.persistence import repo, task_rows
from app.persistence.models import ProcessDefinition

from .forms import with_enums


def instance_summary(instance, version: int | None = None) -> dict:
    """`instance`: an InstanceRow, or any object with its fields (an ORM ProcessInstance)."""
    return {
        "id": instance.id, "process_key": instance.process_key, "version": version,
        "business_key": instance.business_key, "status": instance.status,
        "started_at": instance.started_at, "ended_at": instance.ended_at,
    }


def instance_detail(session: Session, instance, definition: ProcessDefinition,
                    variables: dict, actor: Actor, open_tasks: list | None = None,
                    open_incidents: list | None = None) -> dict:
    """`open_tasks` / `open_incidents`: the instance's, when the caller already has them."""
    if open_tasks is None:
        open_tasks = task_rows.open_of(session, instance.id)
    if open_incidents is None:
        open_incidents = repo.open_incidents(session, instance.id)
    tasks = [t for t in sorted(open_tasks, key=lambda t: t.id)
             if can_see_task(actor, t.assignee, t.candidate_groups)]
    forms = definition.forms or {}
    return {
        **instance_summary(instance, definition.version),
        "variables": variables,
        "tasks": [task_item(t, forms) for t in tasks],
        "incidents": [incident_item(i) for i in sorted(open_incidents, key=lambda i: i.id)],
    }


def task_item(task, forms: dict | None, sla: dict | None = None) -> dict:
    return {
        "sla": sla,
        "id": task.id, "name": task.name, "title": task.title, "instance_id": task.instance_id,
        "instructions": task.instructions,
        "process_key": task.process_key, "assignee": task.assignee,
        "candidate_groups": task.candidate_groups, "priority": task.priority,
        "due_at": task.due_at, "created_at": task.created_at, "status": task.status,
        "completed_at": task.completed_at, "completed_by": task.completed_by,
        "form": form_of(task, forms),
    }


def form_of(task, forms: dict | None) -> dict | None:
    if not task.form_key or forms is None or task.form_key not in forms:
        return None
    return {"schema": with_enums(forms[task.form_key], task.form_enums),
            "ui_schema": forms.get(task.ui_form_key or "", {})}


def incident_item(incident) -> dict:
    return {
        "id": incident.id, "instance_id": incident.instance_id, "job_id": incident.job_id,
        "element_id": incident.element_id, "message": incident.message,
        "status": incident.status, "created_at": incident.created_at,
        "resolved_at": incident.resolved_at,
    }
