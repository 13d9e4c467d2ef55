"""Database access: typed SQLAlchemy models, sessions, repositories and migrations."""

from . import crm, models  # noqa: F401  (registers every table on Base.metadata)
