"""The statements of a task search: which tasks, in which order, and how many.

Each shape of search (sort, who asks, which filters) is built once (`statements`, cached)
with bind parameters, so a search only binds its values. Every page statement also reads the
task's definition (for its form) and its support case's SLA figures: one statement per page.

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
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union,
)

from app.domain.access import Actor, sees_all_tasks
from app.domain.states import Role, TaskStatus
from app.persistence import task_rows
from app.persistence.crm import CaseInstance, SupportCase
from app.persistence.db import PLAN_WITH_VALUES
from app.persistence.models import ProcessInstance

from . import sla

TASK = task_rows.TABLE
GROUPS = task_rows.GROUPS
INSTANCE = ProcessInstance.__table__
LINK = CaseInstance.__table__
CASE = SupportCase.__table__
CASE_FIELDS = sla.CaseClock._fields  # what the SLA block of a task's case needs
PAGE_COLUMNS = [*task_rows.COLUMNS, INSTANCE.c.definition_id.label("definition_id"),
                CASE.c.id.label("case_id"),
                *(CASE.c[name].label(f"case_{name}") for name in CASE_FIELDS)]


def _asc(column):
    return column.asc()


def _asc_nulls_last(column):
    return column.asc().nulls_last()


def _desc_nulls_last(column):
    return column.desc().nulls_last()


# (expression, direction) pairs, ending with the task id: a total order
SORTS = {
    "priority": ((TASK.c.priority, _asc), (TASK.c.created_at, _asc), (TASK.c.id, _asc)),
    "due_at": ((TASK.c.due_at, _asc_nulls_last), (TASK.c.priority, _asc), (TASK.c.id, _asc)),
    "created_at": ((TASK.c.created_at, _asc), (TASK.c.id, _asc)),
}


@dataclass(frozen=True)
class Shape:
    """What a search's statements depend on (the values are bound at execution)."""

    sort: str
    calendars: tuple[str, ...]  # the calendar names the sla_risk order compares
    scoped: bool  # open tasks, no instance, no `mine`: the union of index ranges
    visible: str  # "all" | "none" | "agent" | "mine" (filtered); the scope kind (scoped)
    groups: int = 0  # the agent's groups, for the per-group scopes
    status: bool = True  # filtered: a status is given
    instance: bool = False
    process_key: bool = False
    group: bool = False  # filtered: a candidate_group is given


def order_keys(shape: Shape) -> tuple:
    """The sort's keys. sla_risk: priority, then the share of the case's SLA consumed, most
    consumed first (tasks without a case or target after the others), then the oldest."""
    if shape.sort != "sla_risk":
        return SORTS[shape.sort]
    clocks = {name: bindparam(f"clock_{i}", type_=Float)
              for i, name in enumerate(shape.calendars)}
    risk = sla.risk_order(clocks, columns=sla.TASK_SLA)
    return ((TASK.c.priority, _asc), (risk, _desc_nulls_last), (TASK.c.created_at, _asc),
            (TASK.c.id, _asc))


def clock_values(shape: Shape, calendars: dict) -> dict:
    """The bind values of the sla_risk order: each calendar's business clock now."""
    if shape.sort != "sla_risk":
        return {}
    now = sla.clocks_at({name: calendars[name] for name in shape.calendars})
    return {f"clock_{i}": now[name] for i, name in enumerate(shape.calendars)}


def scope_kind(actor: Actor, group: str | None) -> tuple[str, int]:
    """Which scopes an open-task search of this actor uses, and over how many groups."""
    if group and (sees_all_tasks(actor) or group in actor.groups):
        return "group", 1
    if sees_all_tasks(actor):
        return "all", 0
    if actor.role is not Role.AGENT:
        return "none", 0
    if group:
        return "mine_in_group", 0
    return ("agent", len(actor.groups)) if actor.groups else ("mine", 0)


@lru_cache(maxsize=512)
def statements(shape: Shape):
    """(count, page) statements of a search shape. Unless it reads one instance's tasks, each
    is planned with its bound values (db.PLAN_WITH_VALUES): a generic plan of an index-range
    search scans instead of seeking (230 ms instead of 13 at 200,000 tasks)."""
    count, page = _statements(shape)
    if shape.instance:
        return count, page
    return tuple(s.execution_options(**{PLAN_WITH_VALUES: True}) for s in (count, page))


def _statements(shape: Shape):
    keys = order_keys(shape)
    if shape.scoped:
        scopes = _scopes(shape, keys)
        if not scopes:
            return select(func.count()).where(false()), select(*PAGE_COLUMNS).where(false())
        counts = [count.scalar_subquery() for _, count in scopes if count is not None]
        return (select(functools.reduce(operator.add, counts)),
                _merged_page([first for first, _ in scopes], keys))
    where = [_visible(shape), *_filters(shape)]
    count = select(func.count()).select_from(TASK).where(*where)
    page = with_context(select(*PAGE_COLUMNS), TASK).where(*where) \
        .order_by(*(way(expr) for expr, way in keys)).offset(bindparam("offset")) \
        .limit(bindparam("limit", type_=Integer))
    return count, page


def _filters(shape: Shape) -> list:
    found = []
    if shape.status and not shape.scoped:
        found.append(TASK.c.status == bindparam("status"))
    if shape.instance:
        found.append(TASK.c.instance_id == bindparam("instance_id"))
    if shape.process_key:
        found.append(TASK.c.process_key == bindparam("process_key"))
    if shape.group and not shape.scoped:
        found.append(and_(TASK.c.status == TaskStatus.OPEN,
                          offered_to(bindparam("group_list", expanding=True))))
    return found


def _visible(shape: Shape):
    """Which tasks of the whole table the asker sees (filtered searches)."""
    me = bindparam("me")
    if shape.visible == "all":
        return true()
    if shape.visible == "none":
        return false()
    theirs = [TASK.c.assignee == me, TASK.c.completed_by == me]
    if shape.visible == "agent":  # only open tasks are offered to groups
        theirs.append(and_(TASK.c.status == TaskStatus.OPEN,
                           offered_to(bindparam("groups", expanding=True))))
    return or_(*theirs)


def offered_to(groups):
    """Whether an open task is offered to one of the groups (never NULL, so NOT works): its
    single group is one of them, or it is shared and has a task_group row of one of them."""
    return or_(and_(TASK.c.single_group.is_not(None), TASK.c.single_group.in_(groups)),
               and_(TASK.c.single_group.is_(None), TASK.c.id.in_(
                   select(GROUPS.c.task_id).where(GROUPS.c.group_name.in_(groups)))))


def _scopes(shape: Shape, keys: tuple) -> list[tuple]:
    """Disjoint parts of what the asker may see of the open tasks, each (its first
    `window` tasks by the keys, its count or None when another part counts it)."""
    me = bindparam("me")
    kind = shape.visible
    if kind == "group":
        return _by_group(shape, keys, 1)
    if kind == "all":
        return [_part(shape, keys, [])]
    if kind == "none":
        return []
    if kind == "mine_in_group":
        return [_part(shape, keys, [TASK.c.assignee == me, offered_to(
            bindparam("groups", expanding=True))])]
    if kind == "mine":
        return [_part(shape, keys, [TASK.c.assignee == me])]
    groups = bindparam("groups", expanding=True)
    return _by_group(shape, keys, shape.groups) + \
        [_part(shape, keys, [TASK.c.assignee == me, not_(offered_to(groups))])]


def _part(shape: Shape, keys: tuple, conditions: list) -> tuple:
    """A part read from the task table alone (single-group ranges, the asker's own...)."""
    where = [TASK.c.status == TaskStatus.OPEN, *conditions, *_filters(shape)]
    return (_first(select(TASK.c.id), keys, where),
            select(func.count()).select_from(TASK).where(*where))


def _by_group(shape: Shape, keys: tuple, n: int) -> list[tuple]:
    """The open tasks offered to the groups g0..g(n-1): per group, its single-group tasks
    (a range of ix_task_single_group) and its shared tasks (a range of ix_task_group_group,
    whose rows carry the sort keys and the process and exist only while the task is open).
    A task shared by two of the groups is in both ranges: the merge drops the copy, the
    count counts it once."""
    singles = [_part(shape, keys, [TASK.c.single_group == bindparam(f"g{i}")])
               for i in range(n)]
    shared = select(TASK.c.id).select_from(GROUPS.join(TASK, TASK.c.id == GROUPS.c.task_id))
    shared_keys = tuple((_SHARED_KEYS.get(expr, expr), way) for expr, way in keys)
    process = [GROUPS.c.process_key == bindparam("process_key")] if shape.process_key else []
    firsts = [(_first(shared, shared_keys, [GROUPS.c.group_name == bindparam(f"g{i}"),
                                            *process]), None) for i in range(n)]
    count = select(func.count(GROUPS.c.task_id.distinct())).where(
        GROUPS.c.group_name.in_(bindparam("groups", expanding=True)), *process)
    return singles + firsts[:-1] + [(firsts[-1][0], count)]


_SHARED_KEYS = {TASK.c.priority: GROUPS.c.priority, TASK.c.created_at: GROUPS.c.created_at,
                TASK.c.id: GROUPS.c.task_id}  # the copies task_group keeps, in its index


def _first(query, keys: tuple, where: list):
    """The part's first `window` tasks: their ids and sort keys (labelled k0, k1...)."""
    return query.add_columns(*(expr.label(f"k{i}") for i, (expr, _) in enumerate(keys))) \
        .where(*where).order_by(*(way(expr) for expr, way in keys)) \
        .limit(bindparam("window", type_=Integer)).subquery()


def _merged_page(firsts: list, keys: tuple):
    """The tasks of the page: the parts' first tasks merged (a task two parts hold once)."""
    labels = [f"k{i}" for i in range(len(keys))]
    merged = union(*(select(first) for first in firsts)).subquery()
    chosen = select(merged).order_by(*_by_labels(merged, keys, labels)) \
        .offset(bindparam("offset")).limit(bindparam("limit", type_=Integer)).subquery()
    return with_context(select(*PAGE_COLUMNS), TASK.join(chosen, TASK.c.id == chosen.c.id)) \
        .order_by(*_by_labels(chosen, keys, labels))


def _by_labels(table, keys: tuple, labels: list[str]) -> list:
    return [way(table.c[name]) for (_, way), name in zip(keys, labels, strict=True)]


def with_context(query, tasks):
    """The page's tasks with their instance's definition and their case, if any."""
    return query.select_from(
        tasks.join(INSTANCE, INSTANCE.c.id == TASK.c.instance_id)
        .outerjoin(LINK, LINK.c.instance_id == TASK.c.instance_id)
        .outerjoin(CASE, CASE.c.id == LINK.c.case_id))


BY_ID = with_context(select(*PAGE_COLUMNS), TASK).where(TASK.c.id == bindparam("task_id"))
