"""task sla columns and single group

The SLA figures of a task's support case (calendar, target, base, frozen share) copied onto
the task, so the SLA-risk order needs no join; the task's candidate group when it has exactly
one, so a group's inbox is one index range in page order (ix_task_single_group; the assignee
index carries it too, to tell an agent's own tasks outside their groups apart) and only
tasks with several groups keep task_group rows, which carry the task's priority, creation
time and process so each group's shared tasks are one index range in inbox order too; the operators'
process index carries the SLA figures too. Existing tasks are filled in.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLA_INCLUDE = ["sla_calendar", "sla_minutes", "sla_base", "sla_frozen_share"]
COPIED = {"sla_calendar": "calendar", "sla_minutes": "sla_minutes", "sla_base": "sla_base",
          "sla_frozen_share": "sla_frozen_share"}
FIRST_GROUP = {"postgresql": "candidate_groups ->> 0",
               "sqlite": "json_extract(candidate_groups, '$[0]')"}


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("single_group", sa.String(length=150), nullable=True))
        batch_op.add_column(sa.Column("sla_calendar", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("sla_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sla_base", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("sla_frozen_share", sa.Double(), nullable=True))
        batch_op.drop_index("ix_task_process_status")
        batch_op.drop_index("ix_task_assignee_status")
    with op.batch_alter_table("task_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False,
                                      server_default="3"))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.add_column(sa.Column("process_key", sa.String(length=255), nullable=False,
                                      server_default=""))
        batch_op.drop_index("ix_task_group_group")
    _fill()
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_process_status", ["process_key", "status", "priority", "created_at", "id"],
            unique=False, postgresql_include=SLA_INCLUDE)
        batch_op.create_index(
            "ix_task_single_group", ["single_group", "status", "priority", "created_at", "id"],
            unique=False, postgresql_include=["process_key", "due_at", *SLA_INCLUDE])
        batch_op.create_index("ix_task_assignee_status", ["assignee", "status"], unique=False,
                              postgresql_include=["single_group"])
    with op.batch_alter_table("task_group", schema=None) as batch_op:
        batch_op.alter_column("priority", server_default=None)
        batch_op.alter_column("created_at", server_default=None)
        batch_op.alter_column("process_key", server_default=None)
        batch_op.create_index("ix_task_group_group",
                              ["group_name", "priority", "created_at", "task_id"], unique=False,
                              postgresql_include=["process_key"])


def _fill() -> None:
    first = FIRST_GROUP[op.get_bind().dialect.name]
    op.execute(f"UPDATE task SET single_group = {first} "
               "WHERE json_array_length(candidate_groups) = 1")
    op.execute("DELETE FROM task_group WHERE task_id IN "
               "(SELECT id FROM task WHERE single_group IS NOT NULL)")
    op.execute("UPDATE task_group SET " + ", ".join(
        f"{column} = (SELECT {column} FROM task WHERE task.id = task_group.task_id)"
        for column in ("priority", "created_at", "process_key")))
    case_of_task = ("SELECT {column} FROM support_case JOIN case_instance "
                    "ON case_instance.case_id = support_case.id "
                    "WHERE case_instance.instance_id = task.instance_id")
    assignments = ", ".join(f"{target} = ({case_of_task.format(column=source)})"
                            for target, source in COPIED.items())
    op.execute(f"UPDATE task SET {assignments} "
               "WHERE instance_id IN (SELECT instance_id FROM case_instance)")


def downgrade() -> None:
    with op.batch_alter_table("task_group", schema=None) as batch_op:
        batch_op.drop_index("ix_task_group_group")
        batch_op.drop_column("process_key")
        batch_op.drop_column("created_at")
        batch_op.drop_column("priority")
        batch_op.create_index("ix_task_group_group", ["group_name", "task_id"], unique=False)
    op.execute("INSERT INTO task_group (task_id, group_name) SELECT id, single_group FROM task "
               "WHERE single_group IS NOT NULL AND status = 'open'")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_assignee_status")
        batch_op.create_index("ix_task_assignee_status", ["assignee", "status"], unique=False)
        batch_op.drop_index("ix_task_single_group")
        batch_op.drop_index("ix_task_process_status")
        batch_op.create_index(
            "ix_task_process_status", ["process_key", "status", "priority", "created_at", "id"],
            unique=False)
        for column in ("sla_frozen_share", "sla_base", "sla_minutes", "sla_calendar",
                       "single_group"):
            batch_op.drop_column(column)
