"""Who may do what. Pure rules over an Actor; services call them, the API never decides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import Forbidden
from .states import Role


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    groups: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


SYSTEM = Actor("system", Role.ADMIN)

_STARTERS = {Role.AGENT, Role.OPERATOR, Role.ADMIN}
_OPERATORS = {Role.OPERATOR, Role.ADMIN}
_DESIGNERS = {Role.DESIGNER, Role.ADMIN}
_READERS = {Role.AGENT, Role.OPERATOR, Role.ADMIN}


def require(allowed: bool, action: str) -> None:
    if not allowed:
        raise Forbidden(f"not allowed to {action}")


def can_start(actor: Actor) -> bool:
    return actor.role in _STARTERS


def can_operate(actor: Actor) -> bool:
    """Suspend, resume, cancel, retry incidents, assign tasks to others."""
    return actor.role in _OPERATORS


def can_deploy(actor: Actor) -> bool:
    return actor.role in _DESIGNERS


def sees_all_tasks(actor: Actor) -> bool:
    return actor.role in _OPERATORS


def can_see_task(actor: Actor, assignee: str | None, candidate_groups: Iterable[str]) -> bool:
    if sees_all_tasks(actor):
        return True
    return actor.role is Role.AGENT and _is_theirs(actor, assignee, candidate_groups)


def can_work_task(actor: Actor, assignee: str | None, candidate_groups: Iterable[str]) -> bool:
    """Claim or complete: the assignee, or a member of a candidate group of an unassigned task."""
    if actor.is_admin:
        return True
    if actor.role is not Role.AGENT:
        return False
    if assignee is not None:
        return assignee == actor.username
    return bool(actor.groups.intersection(candidate_groups))


def reads_all_instances(actor: Actor) -> bool:
    """Operators and admins read every instance, its history and the incident list."""
    return actor.role in _OPERATORS


def can_read_instances(actor: Actor) -> bool:
    """Designers deploy and read definitions; they read no instances."""
    return actor.role in _READERS


@dataclass(frozen=True)
class TaskFacts:
    """What the instance rule needs to know of one user task."""

    open: bool
    assignee: str | None
    candidate_groups: tuple[str, ...] = ()
    completed_by: str | None = None


def sees_through_task(actor: Actor, task: TaskFacts) -> bool:
    """An open task assigned to the agent or offered to one of their groups, or one they
    completed."""
    if task.completed_by is not None and task.completed_by == actor.username:
        return True
    return task.open and _is_theirs(actor, task.assignee, task.candidate_groups)


def can_read_instance(actor: Actor, started_by: Iterable[str | None],
                      tasks: Iterable[TaskFacts]) -> bool:
    """Operators and admins read any instance; an agent one they started (`started_by`: the
    starters of the instance and of the instances working for the same case) or one with a task
    they see (`tasks`: likewise); designers none."""
    if reads_all_instances(actor):
        return True
    if not can_read_instances(actor):
        return False
    return actor.username in set(started_by) or any(sees_through_task(actor, t) for t in tasks)


def _is_theirs(actor: Actor, assignee: str | None, candidate_groups: Iterable[str]) -> bool:
    return assignee == actor.username or bool(actor.groups.intersection(candidate_groups))
