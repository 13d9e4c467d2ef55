"""What every command runs with: the settings, a database context at the latest schema,
logging."""

from __future__ import annotations

import logging

import click

from app.config import ConfigError, Settings
from app.persistence import migrate
from app.services.context import Context, build_context


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _require_schema(settings: Settings) -> None:
    if migrate.current(settings.database_url) != migrate.head():
        raise click.ClickException(
            "the database is not at the latest schema: run `clientconnect db upgrade`")


def _migrated_context(settings: Settings, dispatcher=None) -> Context:
    """A context on a database that is at the latest migration (or a clear error)."""
    _require_schema(settings)
    return build_context(settings, dispatcher)


def _close(ctx: Context) -> None:
    ctx.sessions.kw["bind"].dispose()


def _logging() -> None:
    level = _settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # SpiffWorkflow logs every task state change at INFO
        logging.getLogger("spiff").setLevel(logging.WARNING)
