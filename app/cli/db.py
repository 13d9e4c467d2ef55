"""The database schema: `db upgrade` and `db current`."""

from __future__ import annotations

import click

from app.persistence import migrate

from .context import _settings
from .group import main


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (creates the SQLite folder if needed)."""
    url = _settings().database_url
    migrate.upgrade(url)
    click.echo(f"database at revision {migrate.current(url)}")


@db_group.command("current")
def db_current() -> None:
    click.echo(migrate.current(_settings().database_url) or "empty")
