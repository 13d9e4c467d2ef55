"""Initial schema.

Users, tokens, definitions, instances, tasks, jobs, incidents, events, message subscriptions
and receipts.
Generated with alembic autogenerate against app.persistence.models, then reviewed. The
models' custom types are written as plain SQLAlchemy types so that this script never changes
when the models do: UTCDateTime is a zone-aware DateTime, Id is BIGINT (INTEGER on SQLite,
where only INTEGER PRIMARY KEY autoincrements).

Revision ID: 0001
Revises:
Create Date: 2026-11-21 16:00:23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str = "id", **kwargs) -> sa.Column:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), **kwargs)


def _ref(name: str, target: str, ondelete: str | None = None, nullable: bool = False):
    """A BIGINT foreign-key column and its constraint."""
    return (_id(name, nullable=nullable),
            sa.ForeignKeyConstraint([name], [target], ondelete=ondelete))


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    _users()
    _definitions()
    _instances()
    _tasks()
    _jobs_and_incidents()
    _events_and_messages()


def _users() -> None:
    op.create_table(
        "user_account",
        _id(nullable=False),
        _str("username", 150),
        _str("password_hash", 255),
        _str("role", 20),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "api_token",
        _id(nullable=False),
        *_ref("user_id", "user_account.id", ondelete="CASCADE"),
        _str("token_hash", 64),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def _definitions() -> None:
    op.create_table(
        "process_definition",
        _id(nullable=False),
        _str("process_key", 255),
        _str("name", 255, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _str("source_file", 255),
        sa.Column("bpmn_xml", sa.Text(), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("forms", sa.JSON(), nullable=False),
        sa.Column("start_messages", sa.JSON(), nullable=False),
        _str("checksum", 64),
        _at("deployed_at"),
        _str("deployed_by", 150, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_key", "version"),
    )
    op.create_index("ix_definition_key_checksum", "process_definition",
                    ["process_key", "checksum"])


def _instances() -> None:
    op.create_table(
        "process_instance",
        _id(nullable=False),
        *_ref("definition_id", "process_definition.id"),
        _str("process_key", 255),
        _str("business_key", 255, nullable=True),
        _str("status", 20),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _at("started_at"),
        _at("ended_at", nullable=True),
        _str("started_by", 150, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_instance_business_key", "process_instance", ["business_key"])
    op.create_index("ix_instance_key_status", "process_instance", ["process_key", "status"])


def _tasks() -> None:
    op.create_table(
        "task",
        _id(nullable=False),
        *_ref("instance_id", "process_instance.id", ondelete="CASCADE"),
        _str("spiff_task_id", 36),
        _str("name", 255),
        _str("title", 255, nullable=True),
        _str("process_key", 255),
        sa.Column("candidate_groups", sa.JSON(), nullable=False),
        _str("assignee", 150, nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        _at("due_at", nullable=True),
        _str("form_key", 255, nullable=True),
        _str("ui_form_key", 255, nullable=True),
        _str("status", 20),
        _at("created_at"),
        _at("completed_at", nullable=True),
        _str("completed_by", 150, nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "spiff_task_id"),
    )
    op.create_index("ix_task_assignee_status", "task", ["assignee", "status"])
    op.create_index("ix_task_instance", "task", ["instance_id"])
    op.create_index("ix_task_status_priority", "task", ["status", "priority", "created_at"])
    op.create_table(
        "task_group",
        *_ref("task_id", "task.id", ondelete="CASCADE"),
        _str("group_name", 150),
        sa.PrimaryKeyConstraint("task_id", "group_name"),
    )
    op.create_index("ix_task_group_group", "task_group", ["group_name", "task_id"])


def _jobs_and_incidents() -> None:
    op.create_table(
        "job",
        _id(nullable=False),
        *_ref("instance_id", "process_instance.id", ondelete="CASCADE"),
        _str("kind", 20),
        _str("spiff_task_id", 36),
        _str("element_id", 255, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _str("status", 20),
        _at("due_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("locked_until", nullable=True),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_instance", "job", ["instance_id"])
    op.create_index("ix_job_status_due", "job", ["status", "due_at"])
    op.create_table(
        "incident",
        _id(nullable=False),
        *_ref("instance_id", "process_instance.id", ondelete="CASCADE"),
        *_ref("job_id", "job.id", ondelete="SET NULL", nullable=True),
        _str("spiff_task_id", 36, nullable=True),
        _str("element_id", 255, nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        _str("status", 20),
        _at("created_at"),
        _at("resolved_at", nullable=True),
        _str("resolved_by", 150, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_instance_status", "incident", ["instance_id", "status"])


def _events_and_messages() -> None:
    op.create_table(
        "event",
        _id(nullable=False),
        *_ref("instance_id", "process_instance.id", ondelete="CASCADE"),
        _at("at"),
        _str("actor", 150, nullable=True),
        _str("kind", 50),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_instance", "event", ["instance_id", "id"])
    op.create_table(
        "message_subscription",
        _id(nullable=False),
        *_ref("instance_id", "process_instance.id", ondelete="CASCADE"),
        _str("message_name", 255),
        _str("correlation_key", 1000),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subscription_lookup", "message_subscription",
                    ["message_name", "correlation_key"])
    op.create_table(
        "message_receipt",
        _str("idempotency_key", 255),
        _str("message_name", 255),
        sa.Column("response", sa.JSON(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )


def downgrade() -> None:
    for table in ("message_receipt", "message_subscription", "event", "incident", "job",
                  "task_group", "task", "process_instance", "process_definition",
                  "api_token", "user_account"):
        op.drop_table(table)  # its indexes go with it
