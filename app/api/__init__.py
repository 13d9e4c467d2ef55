"""The REST API: flask-smorest blueprints, one error handler, bearer-token auth."""

from __future__ import annotations

from flask import Flask, redirect, request
from flask_smorest import Api

from app.domain.errors import ValidationFailed

from . import cases, crm, definitions, health, incidents, instances, messages, tasks
from .auth import actor
from .base import MAX_ID, IdConverter, JsonProvider, text_problem
from .errors import install_error_handlers

SWAGGER_UI_VERSION = "5.35.0"
PUBLIC = ("/api/openapi.json", "/api/docs")  # and what lies under /api/docs/


def register(app: Flask) -> None:
    app.config.update(
        API_TITLE="ClientConnect Flow",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}/",
    )
    app.json = JsonProvider(app)
    # before any rule is added: every <int:...> id is 1..2^63-1, anything else is a 404
    app.url_map.converters["int"] = IdConverter
    api = Api(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    api.register_converter(IdConverter, _id_param)
    for module in (definitions, instances, tasks, messages, incidents, crm, cases):
        api.register_blueprint(module.blp, url_prefix="/api")
    app.register_blueprint(health.blp)
    app.add_url_rule("/", "index", lambda: redirect("/api/docs"))
    app.before_request(_authenticate)
    install_error_handlers(app)


def _id_param(converter) -> dict:
    return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}


def _authenticate() -> None:
    """Every /api/* request but the OpenAPI document and its docs page needs a token: an
    anonymous caller gets its 401 before any argument is read."""
    path = request.path
    if not path.startswith("/api/") or request.method == "OPTIONS":
        return
    if path == PUBLIC[0] or path == PUBLIC[1] or path.startswith(PUBLIC[1] + "/"):
        return
    actor()
    _check_path_values()


def _check_path_values() -> None:
    errors = [{"field": name, "message": problem}
              for name, value in (request.view_args or {}).items()
              if isinstance(value, str) and (problem := text_problem(value))]
    if errors:
        raise ValidationFailed("invalid value in the URL path: " + ", ".join(
            f"{e['field']} {e['message']}" for e in errors), errors)
