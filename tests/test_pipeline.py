"""Write units in psycopg's pipeline mode (app/persistence/pipeline.py), on a real PostgreSQL
and on SQLite, where it does nothing: a deferred statement is sent without waiting for its
answer, its error or a wrong row count still fails and rolls back the whole unit, and the
connection goes back to the pool out of pipeline mode."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.persistence import db, pipeline
from app.persistence.pipeline import DEFERRED

META = MetaData()
PROBE = Table("pipeline_probe", META, Column("id", Integer, primary_key=True),
              Column("name", String(20), unique=True), Column("n", Integer))
ADD = insert(PROBE)
ADD_LATER = insert(PROBE).inline().execution_options(**DEFERRED)
BUMP_LATER = update(PROBE).where(PROBE.c.name == "a").values(n=PROBE.c.n + 1) \
    .execution_options(**DEFERRED)
MISS_LATER = update(PROBE).where(PROBE.c.name == "nobody").values(n=0) \
    .execution_options(**DEFERRED)


class Mismatch(Exception):
    pass


@pytest.fixture
def engine(database_url):
    engine = db.make_engine(database_url)
    META.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return db.make_session_factory(engine)


def _names(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(PROBE.c.name, PROBE.c.n)).all())


def _pipelined(engine) -> bool:
    return engine.dialect.name == "postgresql"


def test_deferred_write_is_answered_with_the_next_statement_waited_for(engine, factory):
    with db.session_scope(factory) as session:
        conn = session.connection()
        conn.execute(ADD, {"name": "a", "n": 1})
        bumped = conn.execute(BUMP_LATER)
        # in a pipeline the UPDATE was queued, not waited for: its count is not in yet
        assert bumped.rowcount == (-1 if _pipelined(engine) else 1)
        assert conn.execute(select(PROBE.c.n)).scalar_one() == 2  # sent in order
        assert bumped.context.cursor.rowcount == 1
    assert _names(engine) == {"a": 2}


def test_error_of_a_deferred_write_fails_the_unit_and_writes_nothing(engine, factory):
    with pytest.raises(IntegrityError, match="pipeline_probe"), \
            db.session_scope(factory) as session:
        conn = session.connection()
        conn.execute(ADD, {"name": "a", "n": 1})
        conn.execute(ADD_LATER, {"name": "a", "n": 2})  # duplicate name
    assert _names(engine) == {}
    with db.session_scope(factory) as session:  # the pooled connection works again
        session.connection().execute(ADD, {"name": "b", "n": 1})
    assert _names(engine) == {"b": 1}


def test_expect_rows_fails_the_unit_once_a_deferred_count_is_in(engine, factory):
    with pytest.raises(Mismatch), db.session_scope(factory) as session:
        conn = session.connection()
        conn.execute(ADD, {"name": "a", "n": 1})
        pipeline.expect_rows(session, conn.execute(MISS_LATER), 1, Mismatch())
        conn.execute(ADD_LATER, {"name": "c", "n": 3})
    assert _names(engine) == {}


def test_expect_rows_passes_a_matching_deferred_count(engine, factory):
    with db.session_scope(factory) as session:
        conn = session.connection()
        conn.execute(ADD, {"name": "a", "n": 1})
        pipeline.expect_rows(session, conn.execute(BUMP_LATER), 1, Mismatch())
    assert _names(engine) == {"a": 2}


def test_expect_rows_on_a_count_already_known_fails_at_once(engine, factory):
    with pytest.raises(Mismatch), db.session_scope(factory) as session:
        conn = session.connection()
        conn.execute(ADD, {"name": "a", "n": 1})
        missed = conn.execute(update(PROBE).where(PROBE.c.name == "x").values(n=0))
        pipeline.expect_rows(session, missed, 1, Mismatch())
        raise AssertionError("expect_rows let a known mismatch through")
    assert _names(engine) == {}


def test_failure_in_the_unit_drops_its_queued_writes(engine, factory):
    with pytest.raises(LookupError), db.session_scope(factory) as session:
        session.connection().execute(ADD_LATER, {"name": "a", "n": 1})
        raise LookupError("the service gave up")
    assert _names(engine) == {}


def test_connection_goes_back_to_the_pool_out_of_pipeline_mode(engine, factory):
    with db.session_scope(factory) as session:
        session.connection().execute(ADD_LATER, {"name": "a", "n": 1})
        used = session.connection().connection.driver_connection
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is used  # the pool is LIFO: the same connection comes back
        if _pipelined(engine):
            assert driver.pgconn.pipeline_status == 0
        assert conn.execute(select(PROBE.c.n)).scalar_one() == 1
