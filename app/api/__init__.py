"""The REST API: flask-smorest blueprints, one error handler, bearer-token auth."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from . import cases, crm, definitions, health, incidents, instances, messages, tasks
from .errors import install_error_handlers


def register(app: Flask) -> None:
    app.config.update(
        API_TITLE="ClientConnect Flow",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
    )
    api = Api(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    for module in (definitions, instances, tasks, messages, incidents, crm, cases):
        api.register_blueprint(module.blp, url_prefix="/api")
    app.register_blueprint(health.blp)
    install_error_handlers(app)
