"""States of the things the service tracks, as str Enums."""

from __future__ import annotations

from enum import Enum


class InstanceStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED)


class TaskStatus(str, Enum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class JobKind(str, Enum):
    SERVICE_CALL = "service_call"
    TIMER = "timer"


class JobStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class IncidentStatus(str, Enum):
    OPEN = "open"
    RESOLVED = "resolved"


class Role(str, Enum):
    AGENT = "agent"
    OPERATOR = "operator"
    DESIGNER = "designer"
    ADMIN = "admin"
