"""Schema migrations, run programmatically (no alembic.ini needed, works when installed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import types
from sqlalchemy.engine import make_url

from .db import make_engine
from .models import Base, UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An alembic Config pointing at the packaged migrations and at `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url  # not an ini option: no % interpolation
    return config


def ensure_sqlite_dir(database_url: str) -> None:
    """Create the folder of a SQLite database file (e.g. instance/) if it is missing."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (the latest by default)."""
    ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)


def head() -> str | None:
    """The newest revision shipped with the code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(database_url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    ensure_sqlite_dir(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def differences(database_url: str) -> list:
    """What autogenerate would change to make the database match the models (empty: none)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


# --- autogenerate hooks (used by migrations/env.py too) -----------------------
def render_item(type_, obj, _autogen_context):
    """Write the models' custom DateTime as a plain zone-aware DateTime in migration scripts."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def compare_type(migration_context, _inspected, _metadata_column, inspected_type, metadata_type):
    """UTCDateTime is a zone-aware DateTime (SQLite has no zone type: any DATETIME matches)."""
    if isinstance(metadata_type, UTCDateTime) and isinstance(inspected_type, types.DateTime):
        sqlite = migration_context.dialect.name == "sqlite"
        return not (sqlite or inspected_type.timezone)
    return None
