"""The alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from app.persistence import migrate
from app.persistence.db import make_engine
from app.persistence.models import Base


@pytest.fixture
def sqlite_url(tmp_path):
    # a folder that does not exist yet, like instance/ on a fresh checkout
    return f"sqlite:///{tmp_path / 'instance' / 'clientconnect.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    name = "sqlite_url" if request.param == "sqlite" else "pg_schema_url"
    return request.getfixturevalue(name)


def _inspect(url: str):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            return {table: {
                "columns": {c["name"] for c in insp.get_columns(table)},
                "indexes": {i["name"] for i in insp.get_indexes(table)},
            } for table in insp.get_table_names()}
    finally:
        engine.dispose()


def test_fresh_database_is_at_no_revision(database_url):
    assert migrate.current(database_url) is None
    versions = Path(migrate.MIGRATIONS_DIR) / "versions"
    newest = max(p.name.split("_")[0] for p in versions.glob("[0-9]*.py"))
    assert migrate.head() == newest


def test_upgrade_creates_every_table_column_and_index(database_url):
    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()
    found = _inspect(database_url)
    assert set(Base.metadata.tables) | {"alembic_version"} == set(found)
    for name, table in Base.metadata.tables.items():
        assert {c.name for c in table.columns} == found[name]["columns"], name
        assert {i.name for i in table.indexes} <= found[name]["indexes"], name


def test_migrated_database_matches_the_models(database_url):
    migrate.upgrade(database_url)

    assert migrate.differences(database_url) == []


def test_upgrade_twice_is_a_no_op(database_url):
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()
    assert migrate.differences(database_url) == []


def test_compare_notices_a_missing_index(database_url):
    """The check above would pass vacuously if the comparison saw nothing: it does not."""
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_job_status_due"))
    engine.dispose()

    diffs = migrate.differences(database_url)

    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_job_status_due")]


def test_timestamps_are_zone_aware_on_postgresql(pg_schema_url):
    migrate.upgrade(pg_schema_url)
    engine = make_engine(pg_schema_url)
    with engine.connect() as conn:
        columns = inspect(conn).get_columns("job")
    engine.dispose()

    due_at = next(c for c in columns if c["name"] == "due_at")
    assert due_at["type"].timezone is True


def test_existing_tasks_get_their_single_group_and_shared_rows_their_keys(database_url):
    """0004 on tasks written before it: a one-group task keeps its group in single_group and
    loses its task_group row; a shared task's rows get its priority, creation and process."""
    migrate.upgrade(database_url, "0003")
    engine = make_engine(database_url)
    created = "2026-01-05 10:00:00"
    try:
        with engine.begin() as conn:
            instance = _old_instance(conn)
            for spiff, groups, priority in (("a", ["sales"], 2), ("b", ["sales", "ops"], 1)):
                task = conn.execute(text(
                    "INSERT INTO task (instance_id, spiff_task_id, name, process_key,"
                    " candidate_groups, priority, status, created_at) VALUES (:i, :s, 'n', 'p',"
                    " :g, :p, 'open', :c) RETURNING id"),
                    {"i": instance, "s": spiff, "g": json.dumps(groups), "p": priority,
                     "c": created}).scalar_one()
                for group in groups:
                    conn.execute(text("INSERT INTO task_group (task_id, group_name) "
                                      "VALUES (:t, :g)"), {"t": task, "g": group})
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            singles = conn.execute(text(
                "SELECT spiff_task_id, single_group FROM task ORDER BY spiff_task_id")).all()
            rows = conn.execute(text(
                "SELECT t.spiff_task_id, g.group_name, g.priority, g.process_key, g.created_at"
                " FROM task_group g JOIN task t ON t.id = g.task_id ORDER BY g.group_name"
            )).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in singles] == [("a", "sales"), ("b", None)]
    assert [tuple(r[:4]) for r in rows] == [("b", "ops", 1, "p"), ("b", "sales", 1, "p")]
    assert {str(r[4])[:19] for r in rows} == {created}


def test_existing_instances_get_the_flags_set_by_the_migration(database_url):
    migrate.upgrade(database_url, "0002")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            _old_instance(conn)
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            flags = conn.execute(text("SELECT has_timers, has_subscriptions, has_service_calls"
                                      " FROM process_instance")).one()
        assert [bool(flag) for flag in flags] == [True, True, True]
    finally:
        engine.dispose()


def _old_instance(conn) -> int:
    """An active instance of a bare definition, with only the columns of revision 0002."""
    definition = conn.execute(text(
        "INSERT INTO process_definition (process_key, version, source_file, bpmn_xml,"
        " spec_json, forms, start_messages, checksum, deployed_at) VALUES ('p', 1, 'f',"
        " '', '', '{}', '[]', 'c', CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
    return conn.execute(text(
        "INSERT INTO process_instance (definition_id, process_key, status, state,"
        " version, started_at) VALUES (:d, 'p', 'active', '', 1, CURRENT_TIMESTAMP)"
        " RETURNING id"), {"d": definition}).scalar_one()
