"""What the engine reports after each step, in plain data the services can store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class UserTaskView:
    spiff_task_id: str
    element_id: str
    title: str
    candidate_groups: tuple[str, ...]
    form_key: str | None
    ui_form_key: str | None
    priority: int | None
    due_at: datetime | None
    assignee: str | None = None
    form_enums: dict | None = None
    instructions: str | None = None


@dataclass(frozen=True)
class TimerView:
    spiff_task_id: str
    element_id: str
    due_at: datetime


@dataclass(frozen=True)
class MessageWait:
    name: str
    correlation: dict


@dataclass(frozen=True)
class OutgoingMessage:
    """A message thrown by the process that no task of its own catches."""

    name: str
    payload: dict
    correlation: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceCallView:
    spiff_task_id: str
    element_id: str
    operation: str
    params: dict
    retries: int | None


@dataclass(frozen=True)
class ErrorView:
    spiff_task_id: str | None
    element_id: str | None
    message: str
    sandbox_violation: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The instance after an engine step: its state and the waits the services must track."""

    state: bytes
    completed: bool
    user_tasks: tuple[UserTaskView, ...] = ()
    timers: tuple[TimerView, ...] = ()
    messages: tuple[MessageWait, ...] = ()
    service_calls: tuple[ServiceCallView, ...] = ()
    errors: tuple[ErrorView, ...] = ()
    outgoing: tuple[OutgoingMessage, ...] = ()
    variables: dict = field(default_factory=dict)
