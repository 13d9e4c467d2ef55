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


def _is_theirs(actor: Actor, assignee: str | None, candidate_groups: Iterable[str]) -> bool:
    return assignee == actor.username or bool(actor.groups.intersection(candidate_groups))
