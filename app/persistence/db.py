"""Engine and session factory. Services own the transaction: they open `session_scope`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from . import event_log, pipeline


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # No pool_pre_ping: it costs a `SELECT 1` round trip on every checkout, i.e. on every
    # request. Connections are recycled after RECYCLE_SECONDS instead, and one that sat idle
    # in the pool for IDLE_PING_SECONDS or more (the server may have restarted or dropped
    # it meanwhile) is pinged before use; a busy pool never pings. LIFO keeps the busy
    # connections busy and lets the others idle out.
    engine = create_engine(database_url, pool_size=10, max_overflow=20,
                           pool_recycle=RECYCLE_SECONDS, pool_use_lifo=True)
    pipeline.install(engine, PLAN_WITH_VALUES)
    event.listen(engine, "checkin", _mark_idle)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


# Execution option: run the statement unprepared, so PostgreSQL plans it with its bound
# values. psycopg prepares a statement after a few runs, and PostgreSQL then may switch it to
# a generic plan made without the values: right for the engine's key lookups (planned once),
# wrong for searches whose best index range depends on the values.
PLAN_WITH_VALUES = "plan_with_values"


RECYCLE_SECONDS = 1800
IDLE_PING_SECONDS = 10.0
_IDLE_SINCE = "idle_since"


def _mark_idle(_dbapi_connection, record) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(engine: Engine):
    def ping(dbapi_connection, record, _proxy) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # dead: the pool drops it and connects again
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc
    return ping


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    """Take the write lock at BEGIN so two writers queue instead of failing on upgrade; a
    read unit's BEGIN is deferred: a snapshot that never waits for the writer (WAL)."""
    read = connection.get_execution_options().get(READ_ONLY)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


READ_ONLY = "clientconnect_read_only"  # execution option of the read engine (SQLite)


def make_read_engine(engine: Engine) -> Engine:
    """The same pool for reads that write nothing: on PostgreSQL in autocommit (no BEGIN
    and COMMIT round trips; each statement sees what is committed when it starts), on SQLite
    in a deferred transaction."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit that only reads: nothing is committed; the connection goes back at the end."""
    with factory() as session:
        yield session


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success (with the history entries it gathered), roll back
    on any error. On PostgreSQL its statements run pipelined (`pipeline`), which ends before
    the commit so the connection goes back to the pool out of pipeline mode."""
    session = factory()
    try:
        with pipeline.pipelined(session):
            yield session
            event_log.flush(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
