"""Schemas of the support-case endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domain.crm import Channel, Impact

from .base import Schema
from .schemas import Page, Sla


class NewCase(Schema):
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    product = fields.String(required=True, validate=validate.Length(min=1, max=100))
    typology = fields.String(required=True, validate=validate.Length(min=1, max=150))
    channel = fields.String(required=True, validate=validate.OneOf([c.value for c in Channel]))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    impact = fields.String(required=True, validate=validate.OneOf([i.value for i in Impact]))


class Registered(Schema):
    case_id = fields.Integer()
    instance_id = fields.Integer()
    priority = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)


class Links(Schema):
    reincidence_of = fields.Integer(allow_none=True)
    reincidences = fields.List(fields.Integer())
    reopened_from = fields.Integer(allow_none=True)
    reopened_as = fields.List(fields.Integer())
    major_incident_id = fields.Integer(allow_none=True)


class TimelineEntry(Schema):
    at = fields.DateTime()
    actor = fields.String(allow_none=True)
    kind = fields.String()
    from_tier = fields.String(allow_none=True)
    to_tier = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    detail = fields.Dict()


class CaseItem(Schema):
    id = fields.Integer()
    customer_id = fields.String()
    product = fields.String()
    typology = fields.String()
    channel = fields.String()
    subject = fields.String()
    description = fields.String()
    impact = fields.String()
    segment = fields.String()
    status = fields.String()
    tier = fields.String()
    priority = fields.String(allow_none=True)
    n2_group = fields.String(allow_none=True)
    n3_group = fields.String(allow_none=True)
    instance_id = fields.Integer(allow_none=True)
    reincidence = fields.Boolean()
    reprocess_count = fields.Integer()
    became_incident = fields.Boolean()
    resolved_tier = fields.String(allow_none=True)
    reopen_count = fields.Integer()
    sla_minutes = fields.Integer(allow_none=True)
    calendar = fields.String(allow_none=True)
    created_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    sla = fields.Nested(Sla, allow_none=True)
    sla_step = fields.String(metadata={"description": "none | warning | breached | critical"})
    sla_pauses = fields.List(fields.Dict())
    sla_met = fields.Boolean(allow_none=True)
    ola = fields.Dict(metadata={"description": "N2/N3 internal targets and business minutes"})


class CaseDetail(CaseItem):
    links = fields.Nested(Links)
    timeline = fields.List(fields.Nested(TimelineEntry))


class CaseQuery(Page):
    customer_id = fields.String()
    product = fields.String()
    status = fields.String(validate=validate.OneOf(["open", "waiting_customer", "resolved",
                                                    "closed"]))
    priority = fields.String(validate=validate.OneOf(["P1", "P2", "P3", "P4"]))


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseItem))
    total = fields.Integer()


class Reopen(Schema):
    """A reopening or an escalation: why."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class KpiQuery(Schema):
    date_from = fields.AwareDateTime(data_key="from", load_default=None, default_timezone=None)
    date_to = fields.AwareDateTime(data_key="to", load_default=None)
    product = fields.String(load_default=None)
    segment = fields.String(load_default=None)


class Indicator(Schema):
    value = fields.Float(allow_none=True)
    formula = fields.String()


class KpiFilters(Schema):
    date_from = fields.DateTime(data_key="from", attribute="from", allow_none=True)
    date_to = fields.DateTime(data_key="to", attribute="to", allow_none=True)
    product = fields.String(allow_none=True)
    segment = fields.String(allow_none=True)


class KpiReport(Schema):
    filters = fields.Nested(KpiFilters)
    cases = fields.Integer()
    resolved = fields.Integer()
    indicators = fields.Dict(keys=fields.String(), values=fields.Nested(Indicator))
    by_product = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_typology = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_tier = fields.Dict(keys=fields.String(), values=fields.Integer())


class SlaReportQuery(Schema):
    group_by = fields.String(load_default="product",
                             validate=validate.OneOf(["product", "segment", "tier"]))
    date_from = fields.AwareDateTime(data_key="from", load_default=None)
    date_to = fields.AwareDateTime(data_key="to", load_default=None)


class SlaReportRow(Schema):
    group = fields.String()
    cases = fields.Integer()
    resolved = fields.Integer()
    compliance_pct = fields.Float(allow_none=True)
    breaches = fields.Integer()
    mean_business_hours = fields.Float(allow_none=True)
    p90_business_hours = fields.Float(allow_none=True, metadata={"description": "nearest rank"})
    ola_compliance_pct = fields.Float(allow_none=True, metadata={
        "description": "group_by=tier: cases whose time at N2/N3 stayed within its OLA"})
    ola_mean_business_hours = fields.Float(allow_none=True)


class SlaReport(Schema):
    group_by = fields.String()
    date_from = fields.DateTime(data_key="from", attribute="from", allow_none=True)
    date_to = fields.DateTime(data_key="to", attribute="to", allow_none=True)
    items = fields.List(fields.Nested(SlaReportRow))


class AtRiskItem(Schema):
    id = fields.Integer()
    customer_id = fields.String()
    product = fields.String()
    priority = fields.String(allow_none=True)
    tier = fields.String()
    status = fields.String()
    sla_step = fields.String()
    sla = fields.Nested(Sla)


class AtRisk(Schema):
    items = fields.List(fields.Nested(AtRiskItem))
