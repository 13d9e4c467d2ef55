"""Process instances: start, read, history, suspend, resume, cancel."""

from __future__ import annotations

from app.services import instances as service

from . import schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("instances", __name__, description="Run and steer process instances")


@blp.route("/instances", methods=["POST"])
@blp.arguments(schemas.StartInstance)
@blp.response(201, schemas.InstanceDetail)
def start(body):
    """Start an instance of the latest version of a process."""
    return service.start(context(), actor(), body["process_key"], body["business_key"],
                         body["variables"])


@blp.route("/instances", methods=["GET"])
@blp.arguments(schemas.InstanceQuery, location="query")
@blp.response(200, schemas.InstanceList)
def search(query):
    """Instances the caller may read, newest first (agents: those they started or with a task
    they see; operators and admins: all)."""
    return service.search(context(), actor(), **query)


@blp.route("/instances/<int:instance_id>", methods=["GET"])
@blp.response(200, schemas.InstanceDetail)
def get(instance_id):
    """An instance with its variables, open user tasks and open incidents."""
    return service.get(context(), actor(), instance_id)


@blp.route("/instances/<int:instance_id>/history", methods=["GET"])
@blp.response(200, schemas.History)
def history(instance_id):
    """Every state change of the instance, oldest first, with its actor."""
    return service.history(context(), actor(), instance_id)


@blp.route("/instances/<int:instance_id>/suspend", methods=["POST"])
@blp.response(200, schemas.InstanceSummary)
def suspend(instance_id):
    """Stop timers and completions until resumed (operators)."""
    return service.suspend(context(), actor(), instance_id)


@blp.route("/instances/<int:instance_id>/resume", methods=["POST"])
@blp.response(200, schemas.InstanceSummary)
def resume(instance_id):
    """Resume a suspended instance (operators)."""
    return service.resume(context(), actor(), instance_id)


@blp.route("/instances/<int:instance_id>/cancel", methods=["POST"])
@blp.response(200, schemas.InstanceSummary)
def cancel(instance_id):
    """Cancel an instance for good (operators)."""
    return service.cancel(context(), actor(), instance_id)
