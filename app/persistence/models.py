"""SQLAlchemy 2.x models. The database is the single source of truth."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON}


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    groups: Mapped[list] = mapped_column(default=list)
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessDefinition(Base):
    __tablename__ = "process_definition"
    __table_args__ = (
        UniqueConstraint("process_key", "version"),
        Index("ix_definition_key_checksum", "process_key", "checksum"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    process_key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int]
    source_file: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict] = mapped_column(default=dict)
    start_messages: Mapped[list] = mapped_column(default=list)
    checksum: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str | None] = mapped_column(String(150))


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (
        Index("ix_instance_key_status", "process_key", "status"),
        Index("ix_instance_business_key", "business_key"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    process_key: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    started_by: Mapped[str | None] = mapped_column(String(150))
    # Whether the instance may have pending timer jobs / message subscriptions / service-call
    # jobs (False: certainly none, so an engine step skips that query). Kept by
    # services.progress: timers and subscriptions follow each step, service calls are set when
    # one is created and cleared when the instance ends. Rows written by other means
    # (migrated, seeded) default to True: looked for once, then put right.
    has_timers: Mapped[bool] = mapped_column(default=False, server_default=true())
    has_subscriptions: Mapped[bool] = mapped_column(default=False, server_default=true())
    has_service_calls: Mapped[bool] = mapped_column(default=False, server_default=true())


def _single_group(context) -> str | None:
    """A new task's candidate group when it has exactly one (see Task.single_group)."""
    groups = context.get_current_parameters().get("candidate_groups") or []
    return groups[0] if len(groups) == 1 else None


# What inbox pages order by besides the key columns: PostgreSQL reads them from the index.
_INBOX_INCLUDE = ["sla_calendar", "sla_minutes", "sla_base", "sla_frozen_share"]


class Task(Base):
    """Inbox projection of the READY user tasks (and their history once completed)."""

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("instance_id", "spiff_task_id"),
        Index("ix_task_status_priority", "status", "priority", "created_at"),
        Index("ix_task_process_status", "process_key", "status", "priority", "created_at", "id",
              postgresql_include=_INBOX_INCLUDE),
        Index("ix_task_single_group", "single_group", "status", "priority", "created_at", "id",
              postgresql_include=["process_key", "due_at", *_INBOX_INCLUDE]),
        # an agent's own tasks outside their groups: told apart without the table
        Index("ix_task_assignee_status", "assignee", "status",
              postgresql_include=["single_group"]),
        Index("ix_task_instance", "instance_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255))
    process_key: Mapped[str] = mapped_column(String(255))
    candidate_groups: Mapped[list] = mapped_column(default=list)
    # The candidate group when there is exactly one (NULL otherwise; set at insert, like the
    # groups): a group's inbox is then one range of ix_task_single_group, in page order.
    single_group: Mapped[str | None] = mapped_column(String(150), default=_single_group)
    assignee: Mapped[str | None] = mapped_column(String(150))
    priority: Mapped[int] = mapped_column(default=3)
    due_at: Mapped[datetime | None]
    form_key: Mapped[str | None] = mapped_column(String(255))
    ui_form_key: Mapped[str | None] = mapped_column(String(255))
    form_enums: Mapped[dict | None]
    instructions: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(150))
    data: Mapped[dict | None]
    # The SLA figures of the task's support case (NULL without one), copied by
    # services.sla.stamp_tasks in the transaction that changes them: the SLA-risk order
    # needs no join.
    sla_calendar: Mapped[str | None] = mapped_column(String(50))
    sla_minutes: Mapped[int | None]
    sla_base: Mapped[float | None]
    sla_frozen_share: Mapped[float | None]


class TaskGroup(Base):
    """One row per candidate group of an OPEN task offered to several groups (a task with
    one group keeps it in Task.single_group), with the task's sort keys and process: each
    group's shared tasks are one index range in inbox order, counted without the task."""

    __tablename__ = "task_group"
    __table_args__ = (
        Index("ix_task_group_group", "group_name", "priority", "created_at", "task_id",
              postgresql_include=["process_key"]),
    )
    task_id: Mapped[int] = mapped_column(
        ForeignKey("task.id", ondelete="CASCADE"), primary_key=True
    )
    group_name: Mapped[str] = mapped_column(String(150), primary_key=True)
    priority: Mapped[int] = mapped_column(default=3)  # the task's, kept equal
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # the task's
    process_key: Mapped[str] = mapped_column(String(255), default="")  # the task's
class Job(Base):
    """The outbox: written in the same transaction as the instance state."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_status_due", "status", "due_at"),
        Index("ix_job_instance", "instance_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=4)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_instance_status", "instance_id", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    spiff_task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(150))


class Event(Base):
    """Append-only audit history of an instance."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_instance", "instance_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(150))
    kind: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict] = mapped_column(default=dict)


class MessageSubscription(Base):
    """An instance waiting for a message, with its correlation values in canonical JSON."""

    __tablename__ = "message_subscription"
    __table_args__ = (Index("ix_subscription_lookup", "message_name", "correlation_key"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    message_name: Mapped[str] = mapped_column(String(255))
    correlation_key: Mapped[str] = mapped_column(String(1000))


class MessageReceipt(Base):
    """The first answer given to an idempotency key, returned again for repeats."""

    __tablename__ = "message_receipt"
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_name: Mapped[str] = mapped_column(String(255))
    response: Mapped[dict]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
