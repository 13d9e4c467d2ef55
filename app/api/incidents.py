"""Incidents for operators."""

from __future__ import annotations

from app.services import incidents as service

from . import schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("incidents", __name__, description="Failures waiting for an operator")


@blp.route("/incidents", methods=["GET"])
@blp.arguments(schemas.IncidentQuery, location="query")
@blp.response(200, schemas.IncidentList)
def search(query):
    """Incidents, newest first (operators)."""
    return service.search(context(), actor(), **query)


@blp.route("/incidents/<int:incident_id>/retry", methods=["POST"])
@blp.response(200, schemas.IncidentItem)
def retry(incident_id):
    """Run the failed job or task again (operators)."""
    return service.retry(context(), actor(), incident_id)
