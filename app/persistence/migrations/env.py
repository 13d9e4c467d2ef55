"""Alembic environment. The URL comes from `app.persistence.migrate` (config attributes)."""

from __future__ import annotations

from alembic import context

from app.persistence.db import make_engine
from app.persistence.migrate import compare_type, render_item
from app.persistence.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: use app.persistence.migrate.upgrade(url)")
    return url


def _options() -> dict:
    return {
        "target_metadata": target_metadata,
        "render_item": render_item,
        "compare_type": compare_type,
        "render_as_batch": True,
    }


def run_offline() -> None:
    context.configure(url=_database_url(), literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _run_on(connection) -> None:
    context.configure(connection=connection, **_options())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
