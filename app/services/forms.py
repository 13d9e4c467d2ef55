"""User-task form data checked against the task's JSON Schema.

Form schemas come from designers and the data from agents, so validation is bounded:

- no `$ref` is ever fetched: validators use a `referencing.Registry` whose retrieval always
  fails, and deploy refuses any `$ref`/`$dynamicRef` that is not local (`#...`);
- `pattern` and `patternProperties` (also where `additionalProperties` consults them) run on
  RE2 (google-re2), whose matching time is linear, instead of Python's backtracking `re`:
  `^(a+)+$` cannot stall a completion. Deploy refuses patterns RE2 does not support
  (backreferences, lookarounds), and a string longer than MAX_PATTERN_INPUT characters fails a
  `pattern` without being matched (a longer property name matches no `patternProperties`);
- `unevaluatedProperties` is not combined with `patternProperties` (jsonschema would match
  those patterns with `re`): deploy refuses it, validation of such a stored form fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from app.domain.errors import ValidationFailed

MAX_PATTERN_INPUT = 10_000
"""Longest string (or property name) a form pattern is matched against."""

REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
"""Keywords whose values are data, not schemas: never searched for references or patterns."""
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
"""Keywords whose values map names (not keywords) to schemas."""


def validate(schema: dict | None, data) -> dict:
    """Return `data` when the form accepts it, else raise ValidationFailed naming each field."""
    if not isinstance(data, dict):
        raise ValidationFailed("form data must be an object",
                               [{"field": "data", "message": "must be an object"}])
    if not schema:
        return data
    try:
        errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.path))
    except Unresolvable as exc:
        raise ValidationFailed("the form cannot be checked", [
            {"field": "data", "message": f"the form refers to a schema that is not part of "
                                         f"it ({exc}); ask a designer to fix the form"}]) from None
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


# -- bounded validator -----------------------------------------------------------------------

def _refuse_retrieval(uri: str):
    """Registry retrieval hook: a form never loads a schema from anywhere (no SSRF)."""
    raise NoSuchResource(ref=uri)


NO_RETRIEVAL = Registry(retrieve=_refuse_retrieval)


@lru_cache(maxsize=1024)
def _regex(pattern: str):
    """The RE2 program of `pattern`, or None when RE2 cannot compile it."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error:
        return None


def _matches(pattern: str, name: str) -> bool:
    regex = _regex(pattern)
    return regex is not None and len(name) <= MAX_PATTERN_INPUT and bool(regex.search(name))


def _pattern(validator, pattern, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    regex = _regex(pattern)
    if regex is None:
        yield ValidationError(f"cannot be checked: the form's pattern {pattern!r} is not "
                              "supported (RE2 syntax)")
    elif len(instance) > MAX_PATTERN_INPUT:
        yield ValidationError(f"is longer than {MAX_PATTERN_INPUT} characters, too long to be "
                              f"checked against {pattern!r}")
    elif not regex.search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _matches(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    """jsonschema's additionalProperties, consulting patternProperties through RE2."""
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [name for name in instance if name not in known
              and not any(_matches(pattern, name) for pattern in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(each) for each in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{names} {verb} not match any of the regexes: {listed}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({names} {verb} "
                                  "unexpected)")


FormValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
})


@lru_cache(maxsize=512)
def _cached(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        raise ValidationFailed("the form cannot be checked", [
            {"field": "data", "message": UNEVALUATED_WITH_PATTERNS}])
    return FormValidator(schema, registry=NO_RETRIEVAL)


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


# -- deploy-time checks ----------------------------------------------------------------------

UNEVALUATED_WITH_PATTERNS = ("a form cannot combine unevaluatedProperties with "
                             "patternProperties; use additionalProperties instead")


def check_schema(schema) -> str | None:
    """The reason a form file is not a usable JSON Schema, or None."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    problems = list(_unsafe(schema, ""))
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        problems.append(UNEVALUATED_WITH_PATTERNS)
    return "; ".join(problems[:10]) or None


def _keywords(schema, where: str) -> Iterator[tuple[str, object, str]]:
    """(keyword, value, JSON pointer) of every keyword of `schema` and of its subschemas."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _keywords(item, f"{where}/{index}")
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        here = f"{where}/{_escape(key)}"
        yield key, value, f"#{where}"
        if key in _DATA_KEYWORDS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, subschema in value.items():
                yield from _keywords(subschema, f"{here}/{_escape(name)}")
        else:
            yield from _keywords(value, here)


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _uses(schema, keyword: str) -> bool:
    return any(key == keyword for key, _, _ in _keywords(schema, ""))


def _unsafe(schema, where: str) -> Iterator[str]:
    for key, value, at in _keywords(schema, where):
        if key in REFERENCE_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
            yield (f"{key} {value!r} at {at} is not allowed: a form may only refer to its own "
                   "definitions ('#/...'); include the referenced schema in the form")
        elif key == "pattern" and isinstance(value, str):
            yield from _unsupported_pattern(value, at)
        elif key == "patternProperties" and isinstance(value, dict):
            for pattern in value:
                yield from _unsupported_pattern(pattern, f"{at}/patternProperties")


def _unsupported_pattern(pattern: str, at: str) -> Iterator[str]:
    if _regex(pattern) is None:
        yield (f"pattern {pattern!r} at {at} is not supported: form patterns use RE2 syntax "
               "(no backreferences or lookarounds)")
