"""Tables of the CRM processes: products and typologies, customers, support cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, Id, utcnow


class Product(Base):
    """A product or channel. Its N2/N3 routing lives in the support_case `routing` DMN."""

    __tablename__ = "product"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class Typology(Base):
    __tablename__ = "typology"
    __table_args__ = (UniqueConstraint("product_id", "name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(150))
    n1_resolvable: Mapped[bool] = mapped_column(default=False)
    guide: Mapped[str | None] = mapped_column(Text)


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # NIT
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(String(20))
    value_rank: Mapped[int]
    sensitivity: Mapped[str] = mapped_column(String(10))
    n1_agent: Mapped[str | None] = mapped_column(String(150))
    account_manager: Mapped[str | None] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SupportCase(Base):
    """The case projection of a support_case instance, kept in step after every engine step."""

    __tablename__ = "support_case"
    __table_args__ = (
        Index("ix_case_reincidence", "customer_id", "product", "typology", "created_at"),
        Index("ix_case_status", "status", "created_at"),
        Index("ix_case_product_created", "product", "created_at"),
        Index("ix_case_instance", "instance_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customer.id"))
    product: Mapped[str] = mapped_column(String(100))
    typology: Mapped[str] = mapped_column(String(150))
    channel: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    impact: Mapped[str] = mapped_column(String(20))
    segment: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(2), default="N1")
    n2_group: Mapped[str | None] = mapped_column(String(150))
    n3_group: Mapped[str | None] = mapped_column(String(150))
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id", ondelete="SET NULL"))
    reincidence_of: Mapped[int | None] = mapped_column(ForeignKey("support_case.id"))
    reopened_from: Mapped[int | None] = mapped_column(ForeignKey("support_case.id"))
    reprocess_count: Mapped[int] = mapped_column(default=0)
    became_incident: Mapped[bool] = mapped_column(default=False)
    escalated: Mapped[bool] = mapped_column(default=False)
    resolved_tier: Mapped[str | None] = mapped_column(String(2))
    reopen_count: Mapped[int] = mapped_column(default=0)
    sla_minutes: Mapped[int | None]
    calendar: Mapped[str | None] = mapped_column(String(50))
    calendar_def: Mapped[dict | None]  # the calendar as it was when the case started
    sla_pauses: Mapped[list] = mapped_column(default=list)
    sla_paused_minutes: Mapped[float] = mapped_column(default=0.0)
    sla_paused_since: Mapped[datetime | None]  # start of the pause under way
    sla_step: Mapped[str] = mapped_column(String(20), default="none")
    sla_base: Mapped[float | None]  # business clock minute the consumption counts from
    sla_frozen_share: Mapped[float | None]  # share consumed while paused or once resolved
    sla_consumed_minutes: Mapped[float | None]  # frozen at resolution
    sla_met: Mapped[bool | None]  # frozen at resolution
    ola: Mapped[dict] = mapped_column(default=dict)  # {"N2": {"target", "spent"}, "N3": ...}
    sla_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id", ondelete="SET NULL"))
    major_incident_id: Mapped[int | None] = mapped_column(ForeignKey("major_incident.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class MajorIncident(Base):
    """Many cases of one product within minutes: one incident, resolved once for all."""

    __tablename__ = "major_incident"
    __table_args__ = (Index("ix_major_incident_product_status", "product", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    product: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)


class CaseInstance(Base):
    """Which case a process instance works for (the case's own flow and its SLA watch)."""

    __tablename__ = "case_instance"
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("process_instance.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_case.id", ondelete="CASCADE"))


class CaseEvent(Base):
    """The case timeline: every hand-off with who, when and why."""

    __tablename__ = "case_event"
    __table_args__ = (Index("ix_case_event_case", "case_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_case.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(150))
    kind: Mapped[str] = mapped_column(String(40))
    from_tier: Mapped[str | None] = mapped_column(String(2))
    to_tier: Mapped[str | None] = mapped_column(String(2))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(default=dict)
