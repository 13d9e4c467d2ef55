"""The append-only history of instances: entries are gathered by the unit of work and written
together, in one multi-row INSERT, just before it commits (`db.session_scope`)."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import Session

from .models import Event, utcnow
from .pipeline import DEFERRED

TABLE = Event.__table__
# inline: no RETURNING of the new id, so the INSERT rides with the unit's last round trip
_INSERT = insert(TABLE).inline().execution_options(**DEFERRED)
_PENDING = "event_log.pending"  # session.info key: entries not written yet


def add(session: Session, instance_id: int, actor: str | None, kind: str, **detail) -> None:
    session.info.setdefault(_PENDING, []).append(
        {"instance_id": instance_id, "at": utcnow(), "actor": actor, "kind": kind,
         "detail": detail})


def flush(session: Session) -> None:
    """Write the gathered entries, in the order they were added."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(_INSERT, pending)
