"""ClientConnect Flow: BPMN process automation for customer support and CRM teams."""

from __future__ import annotations

from flask import Flask

from .config import Settings
from .services.context import Context, build_context


def create_app(settings: Settings | None = None, context: Context | None = None) -> Flask:
    """Wire the web app. Pass `context` to share one with a worker or a test."""
    settings = settings or (context.settings if context else Settings.from_env())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes * 4,
    )
    app.extensions["clientconnect"] = context or build_context(settings)
    from .api import register
    register(app)
    return app
