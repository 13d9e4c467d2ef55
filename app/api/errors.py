"""One handler: every error leaves as {code, status, message, errors}."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, jsonify
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.domain import errors as domain

log = logging.getLogger(__name__)

STATUS = {
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.ValidationFailed: 422,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
}


def body(status: int, message: str, errors=None):
    payload = {"code": status, "status": HTTPStatus(status).phrase, "message": message,
               "errors": errors or []}
    return jsonify(payload), status


def _domain_error(exc: domain.DomainError):
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    response = body(status, exc.message, exc.errors)
    if status == 401:
        response[0].headers["WWW-Authenticate"] = "Bearer"
    return response


def _http_error(exc: HTTPException):
    messages = (getattr(exc, "data", None) or {}).get("messages")
    errors = _field_errors(messages) if messages else []
    message = exc.description or exc.name
    if exc.code == 422 and errors:  # webargs' generic text says nothing: name the fields
        message = "invalid input: " + "; ".join(f"{e['field']}: {e['message']}"
                                                for e in errors[:3])
        message += f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return body(exc.code or 500, message, errors)


def _field_errors(messages: dict) -> list[dict]:
    """webargs' {location: {field: [msg]}} as [{"field", "message"}]; marshmallow's
    schema-level `_schema` is the body (or the query string) itself."""
    found = []
    for location, fields in messages.items():
        found.extend(_flatten(fields, "", "query" if location == "query" else "body"))
    return found


def _flatten(node, prefix: str, root: str) -> list[dict]:
    if isinstance(node, dict):
        return [e for key, value in node.items()
                for e in _flatten(value, _join(prefix, key), root)]
    if isinstance(node, list) and all(isinstance(m, str) for m in node):
        return [{"field": prefix or root, "message": m} for m in node]
    return [{"field": prefix or root, "message": str(node)}]


def _join(prefix: str, key) -> str:
    if key == "_schema":
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)


def _data_error(exc: DataError):
    """Last resort: a value the database refuses (webargs and the schemas catch the rest)."""
    log.warning("database refused a value: %s", exc.orig)
    reason = (str(exc.orig).strip().splitlines() or ["refused by the database"])[0][:200]
    return body(422, "a value in the request cannot be stored or compared by the database",
                [{"field": "body", "message": reason}])


def _unexpected(exc: Exception):
    log.exception("unexpected error", exc_info=exc)
    return body(500, InternalServerError.description)


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DataError, _data_error)
    app.register_error_handler(Exception, _unexpected)
