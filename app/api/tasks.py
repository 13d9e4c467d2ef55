"""The task inbox."""

from __future__ import annotations

from app.services import tasks as service

from . import schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("tasks", __name__, description="Work user tasks")


@blp.route("/tasks", methods=["GET"])
@blp.arguments(schemas.TaskQuery, location="query")
@blp.response(200, schemas.TaskList)
def search(query):
    """Tasks the caller may see: assigned to them or offered to one of their groups."""
    return service.search(context(), actor(), **query)


@blp.route("/tasks/<int:task_id>", methods=["GET"])
@blp.response(200, schemas.TaskItem)
def get(task_id):
    """One task with its form."""
    return service.get(context(), actor(), task_id)


@blp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@blp.response(200, schemas.TaskItem)
def claim(task_id):
    """Take an unassigned task of one of your groups."""
    return service.claim(context(), actor(), task_id)


@blp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@blp.response(200, schemas.TaskItem)
def unclaim(task_id):
    """Give a task back to its groups."""
    return service.unclaim(context(), actor(), task_id)


@blp.route("/tasks/<int:task_id>/assign", methods=["POST"])
@blp.arguments(schemas.Assign)
@blp.response(200, schemas.TaskItem)
def assign(body, task_id):
    """Assign a task to a user (operators)."""
    return service.assign(context(), actor(), task_id, body["username"])


@blp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@blp.arguments(schemas.Complete)
@blp.response(200, schemas.Completed)
@blp.alt_response(409, description="The task is no longer open")
def complete(body, task_id):
    """Complete a task with its form data (checked against the form's JSON Schema)."""
    return service.complete(context(), actor(), task_id, body["data"])
