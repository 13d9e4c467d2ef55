"""Marshmallow schemas of the REST contract."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domain.states import InstanceStatus, TaskStatus

from .base import MAX_ID, MAX_PAGE, Schema


class Page(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class Upload(Schema):
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}),
                        required=True)


class DefinitionQuery(Schema):
    process_key = fields.String()


class Deployed(Schema):
    id = fields.Integer()
    process_key = fields.String()
    version = fields.Integer()
    checksum = fields.String()
    created = fields.Boolean(metadata={"description": "false when the content was unchanged"})


class DeployResult(Schema):
    definitions = fields.List(fields.Nested(Deployed))


class Definition(Schema):
    id = fields.Integer()
    process_key = fields.String()
    name = fields.String(allow_none=True)
    version = fields.Integer()
    checksum = fields.String()
    source_file = fields.String()
    deployed_at = fields.DateTime()
    deployed_by = fields.String(allow_none=True)
    start_messages = fields.List(fields.String())


class DefinitionList(Schema):
    items = fields.List(fields.Nested(Definition))


class StartInstance(Schema):
    process_key = fields.String(required=True, validate=validate.Length(min=1, max=255))
    business_key = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=255))
    variables = fields.Dict(keys=fields.String(), load_default=dict)


class InstanceQuery(Page):
    process_key = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in InstanceStatus]))
    business_key = fields.String()


class Form(Schema):
    schema = fields.Dict()
    ui_schema = fields.Dict()


class Sla(Schema):
    due_at = fields.DateTime()
    remaining_business_minutes = fields.Float()
    state = fields.String(metadata={"description": "on_track | at_risk | breached | paused"})
    share = fields.Float(metadata={"description": "share of the target consumed"})


class TaskItem(Schema):
    id = fields.Integer()
    name = fields.String()
    title = fields.String(allow_none=True)
    instructions = fields.String(allow_none=True,
                                 metadata={"description": "guidance shown with the task"})
    instance_id = fields.Integer()
    process_key = fields.String()
    assignee = fields.String(allow_none=True)
    candidate_groups = fields.List(fields.String())
    priority = fields.Integer()
    due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    status = fields.String()
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)
    form = fields.Nested(Form, allow_none=True)
    sla = fields.Nested(Sla, allow_none=True)


class IncidentItem(Schema):
    id = fields.Integer()
    instance_id = fields.Integer()
    job_id = fields.Integer(allow_none=True)
    element_id = fields.String(allow_none=True)
    message = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)


class InstanceSummary(Schema):
    id = fields.Integer()
    process_key = fields.String()
    version = fields.Integer(allow_none=True)
    business_key = fields.String(allow_none=True)
    status = fields.String()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)


class InstanceDetail(InstanceSummary):
    variables = fields.Dict()
    tasks = fields.List(fields.Nested(TaskItem))
    incidents = fields.List(fields.Nested(IncidentItem))


class InstanceList(Schema):
    items = fields.List(fields.Nested(InstanceSummary))
    total = fields.Integer()


class HistoryItem(Schema):
    at = fields.DateTime()
    actor = fields.String(allow_none=True)
    kind = fields.String()
    detail = fields.Dict()


class History(Schema):
    items = fields.List(fields.Nested(HistoryItem))


class TaskQuery(Page):
    mine = fields.Boolean(load_default=False)
    candidate_group = fields.String()
    process_key = fields.String()
    instance_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    status = fields.String(load_default="open",
                           validate=validate.OneOf([TaskStatus.OPEN.value,
                                                    TaskStatus.COMPLETED.value]))
    sort = fields.String(load_default=None, validate=validate.OneOf(
        ["sla_risk", "priority", "due_at", "created_at"]), metadata={
            "description": "default: sla_risk for agents (priority, then share of the SLA "
                           "consumed), priority for others"})


class TaskList(Schema):
    items = fields.List(fields.Nested(TaskItem))
    total = fields.Integer()


class Assign(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=150))


class Complete(Schema):
    data = fields.Dict(keys=fields.String(), load_default=dict)


class Completed(Schema):
    instance = fields.Nested(InstanceSummary)


class Message(Schema):
    correlation = fields.Dict(keys=fields.String(), load_default=dict)
    payload = fields.Dict(keys=fields.String(), load_default=dict)
    idempotency_key = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(min=1, max=255))


class Delivered(Schema):
    instances = fields.List(fields.Integer())


class IncidentQuery(Schema):
    instance_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    status = fields.String(validate=validate.OneOf(["open", "resolved"]))


class IncidentList(Schema):
    items = fields.List(fields.Nested(IncidentItem))


class Health(Schema):
    database = fields.String()
    redis = fields.String()
