"""Support cases."""

from __future__ import annotations

from app.services import cases as service
from app.services import kpis as kpi_service
from app.services import sla_reports

from . import case_schemas as schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("cases", __name__, description="Customer support cases (N1 -> N2 -> N3)")


@blp.route("/cases", methods=["POST"])
@blp.arguments(schemas.NewCase)
@blp.response(201, schemas.Registered)
def register(body):
    """Register a case: priority and routing from the DMN tables, due date in business time."""
    return service.register(context(), actor(), body)


@blp.route("/cases", methods=["GET"])
@blp.arguments(schemas.CaseQuery, location="query")
@blp.response(200, schemas.CaseList)
def search(query):
    """Cases, newest first."""
    actor()
    return service.search(context(), **query)


@blp.route("/cases/<int:case_id>", methods=["GET"])
@blp.response(200, schemas.CaseDetail)
def get(case_id):
    """A case with its links and its timeline."""
    return service.get(context(), actor(), case_id)


@blp.route("/cases/<int:case_id>/reopen", methods=["POST"])
@blp.arguments(schemas.Reopen)
@blp.response(200, schemas.CaseDetail)
@blp.alt_response(201, schema=schemas.CaseDetail, description="Past the window: a new linked case")
def reopen(body, case_id):
    """Within 5 business days of resolution: back to the tier that resolved it; later: a new
    case linked to this one (201)."""
    case, created = service.reopen(context(), actor(), case_id, body["reason"])
    return case, 201 if created else 200


@blp.route("/cases/<int:case_id>/escalate", methods=["POST"])
@blp.arguments(schemas.Reopen)
@blp.response(200, schemas.CaseDetail)
def escalate(body, case_id):
    """The account manager raises the case one step up the escalation ladder."""
    return service.escalate(context(), actor(), case_id, body["reason"])


@blp.route("/kpis", methods=["GET"])
@blp.arguments(schemas.KpiQuery, location="query")
@blp.response(200, schemas.KpiReport)
def kpis(query):
    """Support KPIs of the cases created in [from, to): each indicator with its formula."""
    actor()
    return kpi_service.report(context(), **query)


@blp.route("/sla/report", methods=["GET"])
@blp.arguments(schemas.SlaReportQuery, location="query")
@blp.response(200, schemas.SlaReport)
def sla_report(query):
    """SLA compliance, breaches, mean and p90 business hours per product, segment or tier."""
    actor()
    return sla_reports.report(context(), **query)


@blp.route("/sla/at-risk", methods=["GET"])
@blp.response(200, schemas.AtRisk)
def sla_at_risk():
    """Open cases at risk (75% of the SLA consumed) or breached, worst first."""
    actor()
    return sla_reports.at_risk(context())
