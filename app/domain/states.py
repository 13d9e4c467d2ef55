"""States of the things the service tracks, as str Enums."""

from __future__ import annotations

from enum import StrEnum


class InstanceStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED)


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class JobKind(StrEnum):
    SERVICE_CALL = "service_call"
    TIMER = "timer"
    MESSAGE = "message"
    NOTIFY = "notify"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Role(StrEnum):
    AGENT = "agent"
    OPERATOR = "operator"
    DESIGNER = "designer"
    ADMIN = "admin"
