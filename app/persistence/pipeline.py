"""Fewer round trips per write unit on PostgreSQL: psycopg's pipeline mode.

Inside `pipelined(session)` the unit's statements are queued on the connection. A statement
marked `DEFER` (an execution option: nobody reads its result before the commit) is sent with
the next statement whose result is read; every other statement waits for its result at once
(SQLAlchemy reads the result, the row count or the error when `execute` returns). The
transaction's BEGIN rides with the first statement.

So a task completion's lock-and-read costs one round trip with its BEGIN, and its writes
(complete the task, store the instance, add the next task, the history entries) share one or
two before the COMMIT. A deferred statement's error surfaces at the next statement waited
for, or when the pipeline ends (raised as SQLAlchemy's error class for it, as any statement's
error is): the unit fails and rolls back as a whole. A check on a
deferred statement's row count is checked with `expect_rows`: once all results are in,
before the commit.

SQLite has no pipeline: there `pipelined` does nothing and checks run at the same point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

DEFER = "clientconnect_defer"  # execution option: the result is not read before commit
DEFERRED = {DEFER: True}  # as `statement.execution_options(**DEFERRED)`
_ACTIVE: WeakKeyDictionary = WeakKeyDictionary()  # psycopg connection -> its open pipeline
_CHECKS = "pipeline.checks"  # session.info key: callables to run once results are in


def install(engine: Engine, plan_with_values: str) -> None:
    """Route the engine's statements through `cursor.execute` with the pipeline rules; a
    statement with the execution option `plan_with_values` is never prepared."""
    def execute(cursor, statement, parameters, context) -> bool:
        prepare = False if context.execution_options.get(plan_with_values) else None
        cursor.execute(statement, parameters, prepare=prepare)
        _wait_unless_deferred(cursor, context)
        return True

    def execute_no_params(cursor, statement, context) -> bool:
        cursor.execute(statement)
        _wait_unless_deferred(cursor, context)
        return True

    def executemany(cursor, statement, parameters, context) -> bool:
        cursor.executemany(statement, parameters)
        _wait_unless_deferred(cursor, context)
        return True

    event.listen(engine, "do_execute", execute)
    event.listen(engine, "do_execute_no_params", execute_no_params)
    event.listen(engine, "do_executemany", executemany)


def _wait_unless_deferred(cursor, context) -> None:
    pipeline = _ACTIVE.get(cursor.connection)
    if pipeline is not None and not _deferred(context):
        pipeline.sync()


def _deferred(context) -> bool:
    """Marked DEFER and returns no rows (an INSERT that fetches its new id must wait)."""
    return bool(context.execution_options.get(DEFER)) and \
        not getattr(context.compiled, "effective_returning", None)


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Run the block's statements in pipeline mode (PostgreSQL); on leaving it every queued
    statement has been answered, then the row counts `expect_rows` was given are checked."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        _run_checks(session)
        return
    dialect = session.get_bind().dialect
    driver = session.connection().connection.driver_connection
    try:
        with driver.pipeline() as pipeline:
            _ACTIVE[driver] = pipeline
            try:
                yield
            finally:
                del _ACTIVE[driver]
    except dialect.loaded_dbapi.Error as exc:  # a deferred statement's, answered at the end
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error,
                                  dialect=dialect) from exc
    _run_checks(session)


def expect_rows(session: Session, result, count: int, error: Exception) -> None:
    """Fail the unit with `error` unless the statement of `result` matched `count` rows:
    at once when its row count is known, else (deferred in a pipeline) once the results
    are in, before the commit. The DB-API cursor holds a deferred statement's count then;
    the result took its own (unknown, -1) when the statement was sent."""
    if result.rowcount != -1:
        _expect(result.rowcount, count, error)
    else:
        session.info.setdefault(_CHECKS, []).append(
            lambda: _expect(result.context.cursor.rowcount, count, error))


def _expect(found: int, count: int, error: Exception) -> None:
    if found != count:
        raise error


def _run_checks(session: Session) -> None:
    for check in session.info.pop(_CHECKS, ()):
        check()
