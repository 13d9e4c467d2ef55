"""Fast seeding straight into the bench database with COPY (seeding is never what is measured).

Rows mirror app/persistence/models.py: only the columns a row needs are written; every NOT
NULL column without a server default is set here, as the ORM's Python-side defaults would.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg


def now() -> datetime:
    return datetime.now(UTC)


def alloc_ids(conn: psycopg.Connection, table: str, n: int) -> list[int]:
    """n ids from the table's own sequence, so later inserts by the app never collide."""
    seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    rows = conn.execute(f"SELECT nextval('{seq}') FROM generate_series(1, %s)", (n,))
    return [r[0] for r in rows]


def copy_rows(conn: psycopg.Connection, table: str, columns: tuple[str, ...],
              rows: Iterable[tuple]) -> int:
    count = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


INSTANCE_COLS = ("id", "definition_id", "process_key", "business_key", "status", "state",
                 "version", "started_at", "started_by")
TASK_COLS = ("id", "instance_id", "spiff_task_id", "name", "title", "process_key",
             "candidate_groups", "single_group", "assignee", "priority", "due_at", "form_key",
             "ui_form_key", "status", "created_at", "sla_calendar", "sla_minutes", "sla_base",
             "sla_frozen_share")
TASK_GROUP_COLS = ("task_id", "group_name", "priority", "created_at", "process_key")
JOB_COLS = ("instance_id", "kind", "spiff_task_id", "element_id", "payload", "status", "due_at",
            "attempts", "max_attempts", "created_at")
EVENT_COLS = ("instance_id", "at", "actor", "kind", "detail")
CUSTOMER_COLS = ("id", "name", "segment", "value_rank", "sensitivity", "n1_agent",
                 "account_manager", "email", "created_at", "updated_at")
CASE_COLS = ("id", "customer_id", "product", "typology", "channel", "subject", "description",
             "impact", "segment", "priority", "status", "tier", "instance_id", "reprocess_count",
             "became_incident", "escalated", "reopen_count", "sla_minutes", "calendar",
             "calendar_def", "sla_pauses", "sla_paused_minutes", "sla_paused_since", "sla_step",
             "sla_base", "sla_frozen_share", "sla_consumed_minutes", "sla_met", "ola",
             "created_at", "due_at", "resolved_at")
USER_COLS = ("id", "username", "password_hash", "role", "groups", "active", "created_at")


def instance_row(iid: int, definition_id: int, key: str, business_key: str, state: bytes,
                 started_at: datetime, actor: str = "ana") -> tuple:
    return (iid, definition_id, key, business_key, "active", state, 1, started_at, actor)


def started_event(iid: int, at: datetime, actor: str = "ana") -> tuple:
    return (iid, at, actor, "instance_started", json.dumps({"version": 1, "business_key": None}))


def add_definitions(conn: psycopg.Connection, keys: list[str], like: str) -> dict[str, int]:
    """Copies of the deployed definition `like` under new process keys; {key: id}."""
    src = conn.execute("SELECT name, source_file, bpmn_xml, spec_json, forms, start_messages, "
                       "checksum FROM process_definition WHERE process_key = %s "
                       "ORDER BY version DESC LIMIT 1", (like,)).fetchone()
    ids = {}
    for key in keys:
        ids[key] = conn.execute(
            "INSERT INTO process_definition (process_key, name, version, source_file, bpmn_xml,"
            " spec_json, forms, start_messages, checksum, deployed_at, deployed_by) VALUES "
            "(%s, %s, 1, %s, %s, %s, %s::json, %s::json, %s, %s, 'bench') RETURNING id",
            (key, src[0], src[1], src[2], src[3], json.dumps(src[4]), json.dumps(src[5]),
             src[6], now())).fetchone()[0]
    return ids


def task_group_row(task: tuple, group: str) -> tuple:
    """The task_group row of a TASK_COLS task row offered to several groups, as the app
    writes it (the task's sort keys copied)."""
    values = dict(zip(TASK_COLS, task, strict=True))
    return (values["id"], group, values["priority"], values["created_at"],
            values["process_key"])


def add_users(conn: psycopg.Connection, users: list[tuple[str, str, list[str]]],
              like: str = "ana") -> dict[str, int]:
    """Users (username, role, groups) with the password hash of `like`; {username: id}."""
    password_hash = conn.execute("SELECT password_hash FROM user_account WHERE username = %s",
                                 (like,)).fetchone()[0]
    ids = alloc_ids(conn, "user_account", len(users))
    copy_rows(conn, "user_account", USER_COLS, (
        (uid, name, password_hash, role, json.dumps(groups), True, now())
        for uid, (name, role, groups) in zip(ids, users, strict=True)))
    return {name: uid for uid, (name, _, _) in zip(ids, users, strict=True)}


def add_tokens(conn: psycopg.Connection, user_ids: dict[str, int]) -> dict[str, str]:
    """A new API token per user, stored hashed like app.services.users.create_token."""
    tokens = {name: "ccf_" + secrets.token_urlsafe(32) for name in user_ids}
    copy_rows(conn, "api_token", ("user_id", "token_hash", "created_at"), (
        (user_ids[name], hashlib.sha256(token.encode()).hexdigest(), now())
        for name, token in tokens.items()))
    return tokens
