"""Marshmallow schemas of the reference data (products, typologies) and customers."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domain.crm import Segment, Sensitivity

from .base import Schema
from .schemas import Page

SEGMENTS = validate.OneOf([s.value for s in Segment])
SENSITIVITIES = validate.OneOf([s.value for s in Sensitivity])
RANK = validate.Range(min=1, max=100)


# --- products and typologies -----------------------------------------------------
class TypologyIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=150))
    n1_resolvable = fields.Boolean(load_default=False)
    guide = fields.String(load_default=None, allow_none=True,
                          validate=validate.Length(max=2000))


class ProductCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    active = fields.Boolean(load_default=True)
    typologies = fields.List(fields.Nested(TypologyIn), load_default=list)


class ProductPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100),
                         metadata={"description": "a new name"})
    active = fields.Boolean()
    typologies = fields.List(fields.Nested(TypologyIn), metadata={
        "description": "the new full list: typologies not named here are removed"})
    add_typologies = fields.List(fields.Nested(TypologyIn), metadata={
        "description": "typologies to add, or to update when the name exists"})


class Reference(Schema):
    products = fields.List(fields.Raw(), required=True, metadata={
        "description": '[{"name", "active"?, "typologies": [{"name", "n1_resolvable", '
                       '"guide"}]}]; errors name their path, e.g. products[2].typologies[0].name'})


class ReferenceLoaded(Schema):
    products_created = fields.Integer()
    products_updated = fields.Integer()
    typologies_created = fields.Integer()
    typologies_updated = fields.Integer()


class TypologyItem(Schema):
    name = fields.String()
    n1_resolvable = fields.Boolean()
    guide = fields.String(allow_none=True)


class ProductItem(Schema):
    name = fields.String()
    active = fields.Boolean()
    n2_group = fields.String(allow_none=True, metadata={"description": "from the routing DMN"})
    n3_group = fields.String(allow_none=True, metadata={"description": "from the routing DMN"})
    typologies = fields.List(fields.Nested(TypologyItem))


class ProductList(Schema):
    items = fields.List(fields.Nested(ProductItem))


# --- customers -------------------------------------------------------------------
class CustomerCreate(Schema):
    id = fields.String(required=True, metadata={"description": "NIT, e.g. 900123456-7"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    segment = fields.String(required=True, validate=SEGMENTS)
    value_rank = fields.Integer(required=True, validate=RANK)
    sensitivity = fields.String(required=True, validate=SENSITIVITIES)
    n1_agent = fields.String(load_default=None, allow_none=True)
    account_manager = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)


class CustomerPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    segment = fields.String(validate=SEGMENTS)
    value_rank = fields.Integer(validate=RANK)
    sensitivity = fields.String(validate=SENSITIVITIES)
    n1_agent = fields.String(allow_none=True)
    account_manager = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class CustomerQuery(Page):
    segment = fields.String(validate=SEGMENTS)
    q = fields.String(validate=validate.Length(max=200),
                      metadata={"description": "start of the name or of the NIT"})


class CustomerItem(Schema):
    id = fields.String()
    name = fields.String()
    segment = fields.String()
    value_rank = fields.Integer()
    sensitivity = fields.String()
    n1_agent = fields.String(allow_none=True)
    account_manager = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CaseSummary(Schema):
    id = fields.Integer()
    product = fields.String()
    typology = fields.String()
    status = fields.String()
    priority = fields.String(allow_none=True)
    created_at = fields.DateTime()


class CustomerDetail(CustomerItem):
    cases = fields.List(fields.Nested(CaseSummary), metadata={"description": "newest first"})


class CustomerList(Schema):
    items = fields.List(fields.Nested(CustomerItem))
    total = fields.Integer()
