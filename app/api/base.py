"""The wire: what every request is checked against before a view runs, and how replies encode.

- `IdConverter` is the `int` URL converter: ids are 1..2^63-1 (what the database stores);
  anything else does not match the route (404) instead of overflowing a query.
- `JsonProvider` reads request bodies strictly (no NaN/Infinity, no overflowing floats, bounded
  nesting, bounded integer literals: a clear 400) and writes replies with ISO 8601 dates,
  Decimals as strings, sets as sorted lists and timedeltas as seconds.
- `Blueprint` parses JSON bodies with that provider and answers 415 to a non-JSON body.
- `Schema` is the base of every request schema: no string anywhere in the input (field, dict
  key or value, list item, query parameter, file name) may hold a NUL or a lone surrogate; the
  error names the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import flask_smorest
from flask import current_app
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema as _Schema
from marshmallow import ValidationError, pre_load
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import IntegerConverter
from werkzeug.routing import ValidationError as NoMatch

MAX_ID = 2**63 - 1
MAX_PAGE = 10**6
MAX_DEPTH = 64


class IdConverter(IntegerConverter):
    """`<int:x>`: a positive int64 written in ASCII digits; else the route does not match."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=False)

    def to_python(self, value: str) -> int:
        if len(value) > 19:
            raise NoMatch()
        return super().to_python(value)


# --- JSON --------------------------------------------------------------------------
def _bad_request(message: str) -> BadRequest:
    error = BadRequest(message)
    error.data = {"messages": {"json": [message]}}
    return error


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON; send numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _check_depth(value) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _sorted(items) -> list:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda v: (type(v).__name__, repr(v)))


class JsonProvider(DefaultJSONProvider):
    sort_keys = False  # keep the schemas' field order; mixed-type variable keys cannot sort

    @staticmethod
    def default(o):
        if isinstance(o, (datetime, date, time)):
            return o.isoformat()
        if isinstance(o, Decimal):
            return str(o)
        if isinstance(o, (set, frozenset)):
            return _sorted(o)
        if isinstance(o, timedelta):
            return o.total_seconds()
        return DefaultJSONProvider.default(o)

    def loads(self, s, **kwargs):
        """Strict JSON; any malformed body is a 400 BadRequest with a clear message."""
        kwargs.setdefault("parse_constant", _no_constant)
        kwargs.setdefault("parse_float", _finite_float)
        try:
            value = json.loads(s, **kwargs)
            _check_depth(value)
        except RecursionError:
            raise _bad_request(f"the JSON body is nested too deeply (more than {MAX_DEPTH} "
                               "levels)") from None
        except UnicodeDecodeError:
            raise _bad_request("the body is not UTF-8 encoded JSON") from None
        except json.JSONDecodeError as exc:
            raise _bad_request(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                               f"column {exc.colno}") from None
        except ValueError as exc:  # NaN/Infinity, float overflow, > 4300-digit integers, depth
            raise _bad_request(f"the body is not acceptable JSON: {exc}") from None
        return value


# --- request parsing ---------------------------------------------------------------
class Parser(FlaskParser):
    def _raw_load_json(self, req):
        data = req.get_data(cache=True)
        if not is_json_request(req):
            if data:
                raise UnsupportedMediaType(
                    "send the body as JSON with 'Content-Type: application/json'")
            return core.missing
        if not data.strip():
            return core.missing
        return current_app.json.loads(data)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema, *args, **kwargs):
        """As flask-smorest's, with the schema made once: given a class, webargs would
        build an instance (deep-copying every field) on each request."""
        return super().arguments(schema() if isinstance(schema, type) else schema,
                                 *args, **kwargs)


# --- schemas -----------------------------------------------------------------------
def text_problem(value: str) -> str | None:
    """Why a string cannot be stored or compared (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogates (invalid Unicode)"
    return None


def text_errors(data) -> dict[str, list[str]]:
    """{path: [message]} for every string in `data` that `text_problem` refuses."""
    errors: dict[str, list[str]] = {}
    stack = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, FileStorage):
            node = node.filename or ""
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                errors.setdefault(path or "body", []).append(problem)
        elif isinstance(node, Mapping):
            raw = getattr(node, "data", node)  # webargs' MultiDictProxy wraps the MultiDict
            items = ((k, v if len(v) > 1 else v[0]) for k, v in raw.lists()) \
                if isinstance(raw, MultiDict) else raw.items()
            for key, value in items:
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and text_problem(key):
                    errors.setdefault(name, []).append(f"the name {text_problem(key)}")
                stack.append((name, value))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
    return errors


class Schema(_Schema):
    """Base of the request schemas: refuses NUL and lone surrogates anywhere in the input."""

    @pre_load
    def _refuse_bad_text(self, data, **kwargs):
        errors = text_errors(data)
        if errors:
            raise ValidationError(errors)
        return data
