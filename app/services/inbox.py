"""The queries of a task search: which tasks, in which order, and how many.

A search of open tasks without an instance or `mine` (an agent's inbox, an operator's
filtered search) is split into disjoint scopes, each one range of an index that PostgreSQL
reads in page order: one per group (its tasks with that single candidate group,
ix_task_single_group), one for tasks with several groups (through task_group) and, for an
agent, one for the tasks assigned to them outside their groups. Each scope yields its first
`offset + limit` tasks (a top-N over the first priorities, no full sort), and the page is
taken from their merge; the total is the sum of the scopes' counts. Other searches filter
the whole table.
"""

from __future__ import annotations

import functools
import operator

from sqlalchemy import and_, false, func, not_, or_, select, union_all

from app.domain.access import Actor, sees_all_tasks
from app.domain.states import Role, TaskStatus
from app.persistence.models import Task, TaskGroup

from . import sla


def _asc(column):
    return column.asc()


def _asc_nulls_last(column):
    return column.asc().nulls_last()


def _desc_nulls_last(column):
    return column.desc().nulls_last()


# (expression, direction) pairs, ending with the task id: a total order
SORTS = {
    "priority": ((Task.priority, _asc), (Task.created_at, _asc), (Task.id, _asc)),
    "due_at": ((Task.due_at, _asc_nulls_last), (Task.priority, _asc), (Task.id, _asc)),
    "created_at": ((Task.created_at, _asc), (Task.id, _asc)),
}


def order_keys(calendars: dict, sort: str) -> tuple:
    """The sort's keys. sla_risk: priority, then the share of the case's SLA consumed, most
    consumed first (tasks without a case or target after the others), then the oldest."""
    if sort != "sla_risk":
        return SORTS[sort]
    risk = sla.risk_order(calendars, columns=sla.TASK_SLA)
    return ((Task.priority, _asc), (risk, _desc_nulls_last), (Task.created_at, _asc),
            (Task.id, _asc))


def scoped(actor: Actor, candidate_group: str | None, filters: list, keys: tuple,
           offset: int, limit: int):
    """(count, page) statements of an open-task search, scope by scope."""
    scopes = [[Task.status == TaskStatus.OPEN, *scope, *filters]
              for scope in _scopes(actor, candidate_group)]
    if not scopes:
        return select(func.count()).where(false()), select(Task).where(false())
    counts = [select(func.count()).select_from(Task).where(*scope).scalar_subquery()
              for scope in scopes]
    return select(functools.reduce(operator.add, counts)), _page(scopes, keys, offset, limit)


def _scopes(actor: Actor, group: str | None) -> list[list]:
    """Disjoint condition lists whose union is what the actor may see of the open tasks,
    within `group` when given."""
    if group and (sees_all_tasks(actor) or group in actor.groups):
        return _by_group([group])
    if sees_all_tasks(actor):
        return [[]]
    if actor.role is not Role.AGENT:
        return []
    mine = Task.assignee == actor.username
    if group:
        return [[mine, _offered_to([group])]]
    groups = sorted(actor.groups)
    if not groups:
        return [[mine]]
    return _by_group(groups) + [[mine, not_(_offered_to(groups))]]


def _by_group(groups: list[str]) -> list[list]:
    """The open tasks offered to these groups: those with one group, group by group; those
    with several (or a NULL single_group, whatever the cause) through task_group."""
    return [[Task.single_group == group] for group in groups] + \
        [[Task.single_group.is_(None), Task.id.in_(_group_rows(groups))]]


def _offered_to(groups: list[str]):
    """Whether an open task is offered to one of the groups (never NULL, so NOT works)."""
    return or_(and_(Task.single_group.is_not(None), Task.single_group.in_(groups)),
               and_(Task.single_group.is_(None), Task.id.in_(_group_rows(groups))))


def _group_rows(groups: list[str]):
    return select(TaskGroup.task_id).where(TaskGroup.group_name.in_(groups))


def _page(scopes: list[list], keys: tuple, offset: int, limit: int):
    """The tasks of the page: each scope's first offset + limit by the keys, merged."""
    labels = [f"k{i}" for i in range(len(keys))]
    firsts = [select(Task.id, *(expr.label(name) for (expr, _), name in zip(keys, labels,
                                                                            strict=True)))
              .where(*scope).order_by(*(way(expr) for expr, way in keys))
              .limit(offset + limit).subquery() for scope in scopes]
    merged = union_all(*(select(first) for first in firsts)).subquery()
    chosen = select(merged).order_by(*_by_labels(merged, keys, labels)) \
        .offset(offset).limit(limit).subquery()
    return select(Task).join(chosen, Task.id == chosen.c.id) \
        .order_by(*_by_labels(chosen, keys, labels))


def _by_labels(table, keys: tuple, labels: list[str]) -> list:
    return [way(table.c[name]) for (_, way), name in zip(keys, labels, strict=True)]


def filtered(query, keys: tuple, offset: int, limit: int):
    """(count, page) statements of any other search: `query` selects the tasks."""
    count = select(func.count()).select_from(query.subquery())
    return count, query.order_by(*(way(expr) for expr, way in keys)).offset(offset).limit(limit)
