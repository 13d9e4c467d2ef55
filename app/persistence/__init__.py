"""Database access: typed SQLAlchemy models, sessions, repositories and migrations."""
