"""task sla columns and single group

The SLA figures of a task's support case (calendar, target, base, frozen share) copied onto
the task, so the SLA-risk order needs no join; the task's candidate group when it has exactly
one, so a group's inbox is one index range in page order (ix_task_single_group); the
operators' process index carries the SLA figures too. Existing tasks are filled in.

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
    _fill()
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_process_status", ["process_key", "status", "priority", "created_at", "id"],
            unique=False, postgresql_include=SLA_INCLUDE)
        batch_op.create_index(
            "ix_task_single_group", ["single_group", "status", "priority", "created_at", "id"],
            unique=False, postgresql_include=["process_key", "due_at", *SLA_INCLUDE])


def _fill() -> None:
    first = FIRST_GROUP[op.get_bind().dialect.name]
    op.execute(f"UPDATE task SET single_group = {first} "
               "WHERE json_array_length(candidate_groups) = 1")
    case_of_task = ("SELECT {column} FROM support_case JOIN case_instance "
                    "ON case_instance.case_id = support_case.id "
                    "WHERE case_instance.instance_id = task.instance_id")
    assignments = ", ".join(f"{target} = ({case_of_task.format(column=source)})"
                            for target, source in COPIED.items())
    op.execute(f"UPDATE task SET {assignments} "
               "WHERE instance_id IN (SELECT instance_id FROM case_instance)")


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_single_group")
        batch_op.drop_index("ix_task_process_status")
        batch_op.create_index(
            "ix_task_process_status", ["process_key", "status", "priority", "created_at", "id"],
            unique=False)
        for column in ("sla_frozen_share", "sla_base", "sla_minutes", "sla_calendar",
                       "single_group"):
            batch_op.drop_column(column)
