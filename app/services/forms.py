"""User-task form data checked against the task's JSON Schema."""

from __future__ import annotations

import json
from functools import lru_cache

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from app.domain.errors import ValidationFailed


def validate(schema: dict | None, data) -> dict:
    """Return `data` when the form accepts it, else raise ValidationFailed naming each field."""
    if not isinstance(data, dict):
        raise ValidationFailed("form data must be an object",
                               [{"field": "data", "message": "must be an object"}])
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.path)) \
        if schema else []
    if errors:
        raise ValidationFailed("the form rejected the data", [_field_error(e) for e in errors])
    return data


def _field_error(error) -> dict:
    path = ".".join(str(p) for p in error.absolute_path)
    missing = error.validator == "required"
    field = f"data.{path}" if path else "data"
    if missing:
        name = error.message.split("'")[1] if "'" in error.message else ""
        field = f"{field}.{name}" if name else field
    return {"field": field, "message": error.message}


@lru_cache(maxsize=512)
def _cached(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _validator(schema: dict) -> Draft202012Validator:
    return _cached(json.dumps(schema, sort_keys=True))


def with_enums(schema: dict | None, enums: dict | None) -> dict | None:
    """The form schema with the values the process allows now (`formEnum.<field>`)."""
    if not schema or not enums:
        return schema
    properties = dict(schema.get("properties", {}))
    for field, values in enums.items():
        if field in properties:
            properties[field] = {**properties[field], "enum": values}
    return {**schema, "properties": properties}


def check_schema(schema) -> str | None:
    """The reason a form file is not a usable JSON Schema, or None."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None
