"""Scenario 4: the inbox at 200,000 open tasks over 50 groups and 500 agents (PostgreSQL).

Seeded with COPY: 5 process keys (copies of the approval definition, so tasks carry its
forms), one instance per task, one candidate group per task (uniform; 10% of the tasks are
shared by two groups and get task_group rows, the others only `single_group`, as the app
writes them), 40% of the tasks assigned to a member of their (first) group, 500 agents in
two groups each. Every task works for a support case of its own (support_case +
case_instance rows) with the SLA figures the app stores (`app.services.sla.refresh`, copied
onto the task as `sla.stamp_tasks` does): priority rank 1-5 with its target, 80% on the
business-hours calendar and 20% 7x24, shares consumed spread over 0-160%, 10% with an
earlier pause, 8% waiting for the customer (frozen), 2% resolved (frozen), 1% without a
target yet. Then, from one client process: page 1 (50 items) of an agent's inbox sorted by
`--inbox-sort` (default sla_risk), and an operator's filtered search
(?process_key=&candidate_group=&sort=).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from app.domain.calendar import BusinessCalendar, add_business_time
from app.persistence.crm import SupportCase
from app.services import sla
from bench import seed
from bench.client import get_loop, in_processes

from . import Bench, scenario

KEYS = [f"inbox_p{k}" for k in range(5)]
SAMPLED_AGENTS = 20
SHARED = 0.10  # share of tasks offered to two groups (task_group rows, as the app writes)
STATE = b"x\x9c\x03\x00\x00\x00\x00\x01"  # zlib of b"": the inbox never loads the state
CALENDARS = {"default": BusinessCalendar.default(), "7x24": BusinessCalendar.always()}
TARGETS = {1: 240, 2: 480, 3: 960, 4: 1440, 5: 2400}  # business minutes per priority rank
TIER_TASKS = {"N1": "n1_review", "N2": "n2_review", "N3": "n3_fix"}
SEGMENTS = ("personas", "pyme", "empresas", "corporativo")
N_CUSTOMERS = 200
TABLES = ("process_instance", "customer", "support_case", "case_instance", "task", "task_group",
          "event", "user_account")


@scenario(4, "inbox: 200,000 open tasks, 50 groups, 500 agents", order=60)
def inbox(bench: Bench) -> None:
    stack, res, sizes = bench.stack, bench.results, bench.sizes
    sort = sizes["inbox_sort"]
    t0 = time.monotonic()
    agents = _seed(stack, sizes["s4_tasks"], sizes["s4_groups"], sizes["s4_agents"])
    print(f"   seeded {sizes['s4_tasks']} tasks in {time.monotonic() - t0:.1f}s", flush=True)
    olga = stack.tokens["olga"]
    rng = random.Random(4)
    n = sizes["s4_requests"]
    agent_paths = [("agent", agents[i % len(agents)],
                    f"/api/tasks?sort={sort}&page=1&per_page=50") for i in range(n)]
    operator_paths = [("operator", olga, f"/api/tasks?process_key={rng.choice(KEYS)}"
                       f"&candidate_group=grp{rng.randrange(sizes['s4_groups']):02d}&sort={sort}")
                      for _ in range(n)]
    warm = [("warm", token, path) for _, token, path in agent_paths[:5] + operator_paths[:5]]
    for run in range(bench.runs):
        todo = (warm if run == 0 else []) + agent_paths + operator_paths
        got = in_processes(get_loop, [(stack.port, todo)], timeout=900)[0]
        res.errors += [f"s4: {e}" for e in got.errors[:3]]
        res.add_ms("s4.agent_inbox", f"S4 agent inbox page 1 (sort={sort})",
                   got.samples.get("agent", []), targets={95: ("<=", 20.0)})
        res.add_ms("s4.operator_search", f"S4 operator search process_key+group (sort={sort})",
                   got.samples.get("operator", []), targets={95: ("<=", 20.0)})
    with stack.connect() as conn:
        res.extra["s4_tasks_per_group"] = conn.execute(
            "SELECT avg(c) FROM (SELECT g, count(*) c FROM (SELECT single_group g FROM task "
            "WHERE single_group IS NOT NULL UNION ALL SELECT group_name FROM task_group) o "
            "GROUP BY g) per_group").fetchone()[0]


def _seed(stack, n_tasks: int, n_groups: int, n_agents: int) -> list[str]:
    """Seed and return the tokens of SAMPLED_AGENTS agents."""
    rng = random.Random(42)
    groups = [f"grp{g:02d}" for g in range(n_groups)]
    users, members = _agents(groups, n_agents)
    at = seed.now()
    with stack.connect() as conn:
        definitions = seed.add_definitions(conn, KEYS, like="approval")
        user_ids = seed.add_users(conn, users)
        sampled = rng.sample(sorted(user_ids), SAMPLED_AGENTS)
        tokens = seed.add_tokens(conn, {u: user_ids[u] for u in sampled})
        iids = seed.alloc_ids(conn, "process_instance", n_tasks)
        tids = seed.alloc_ids(conn, "task", n_tasks)
        cids = seed.alloc_ids(conn, "support_case", n_tasks)
        keys = [rng.choice(KEYS) for _ in range(n_tasks)]
        seed.copy_rows(conn, "process_instance", seed.INSTANCE_COLS, (
            seed.instance_row(iid, definitions[key], key, f"case-{cid}", STATE, at)
            for iid, key, cid in zip(iids, keys, cids, strict=True)))
        customers = _customers(conn, rng, at)
        cases: list[CaseFacts] = []
        seed.copy_rows(conn, "support_case", seed.CASE_COLS, (
            _case_row(_case(rng, cid, iid, customers, at), cases)
            for cid, iid in zip(cids, iids, strict=True)))
        seed.copy_rows(conn, "case_instance", ("instance_id", "case_id"),
                       zip(iids, cids, strict=True))
        offered = [_offered(rng, groups) for _ in range(n_tasks)]
        rows = [_task(rng, tid, key, names, members, case, at)
                for tid, key, names, case in zip(tids, keys, offered, cases, strict=True)]
        seed.copy_rows(conn, "task", seed.TASK_COLS, rows)
        seed.copy_rows(conn, "task_group", seed.TASK_GROUP_COLS, (  # as the app: shared only
            seed.task_group_row(row, name) for row, names in zip(rows, offered, strict=True)
            if len(names) > 1 for name in names))
        seed.copy_rows(conn, "event", seed.EVENT_COLS, (seed.started_event(iid, at)
                                                        for iid in iids))
        for table in TABLES:  # as autovacuum would leave them: statistics, visibility map
            conn.execute(f"VACUUM ANALYZE {table}")
    return [tokens[u] for u in sampled]


def _agents(groups: list[str], n_agents: int):
    """(username, role, groups) of each agent, two groups each; and the members of each group."""
    users, members = [], {g: [] for g in groups}
    for j in range(n_agents):
        first = j % len(groups)
        second = (first + 1 + (j // len(groups)) % (len(groups) - 1)) % len(groups)
        name = f"agent{j:03d}"
        users.append((name, "agent", [groups[first], groups[second]]))
        members[groups[first]].append(name)
        members[groups[second]].append(name)
    return users, members


def _customers(conn, rng, at) -> list[tuple[str, str]]:
    """N_CUSTOMERS customers; their (id, segment)."""
    rows = [(f"9{k:08d}", f"Cliente {k}", rng.choice(SEGMENTS), rng.randint(1, 100), "low",
             None, None, f"c{k}@bench.example", at, at) for k in range(N_CUSTOMERS)]
    seed.copy_rows(conn, "customer", seed.CUSTOMER_COLS, rows)
    return [(row[0], row[2]) for row in rows]


class CaseFacts(NamedTuple):
    """What a task copies from its case (the ORM objects of 200,000 cases would not fit)."""

    id: int
    instance_id: int
    created_at: datetime
    task_name: str
    rank: int
    calendar: str | None
    sla_minutes: int | None
    sla_base: float | None
    sla_frozen_share: float | None


def _case(rng, cid: int, iid: int, customers, at) -> SupportCase:
    """An open support case with a realistic SLA, its figures computed by the app's rules."""
    rank = rng.randint(1, 5)
    customer, segment = rng.choice(customers)
    case = SupportCase(id=cid, customer_id=customer, segment=segment, priority=f"P{rank}",
                       instance_id=iid, status="open", tier=rng.choice(("N1", "N1", "N2", "N3")),
                       sla_pauses=[], sla_paused_minutes=0.0, sla_step="none")
    kind = rng.random()
    if kind < 0.01:  # the target is not known yet
        case.created_at = at - timedelta(minutes=rng.uniform(0, 30))
        return case
    name = "7x24" if rng.random() < 0.2 else "default"
    calendar = CALENDARS[name]
    case.calendar, case.calendar_def = name, calendar.to_dict()
    case.sla_minutes = TARGETS[rank] * rng.choice((1, 1, 2))
    used = case.sla_minutes * rng.uniform(0.0, 1.6)
    if kind < 0.03:
        _resolved(rng, case, calendar, used, at)
    elif kind < 0.11:
        _waiting(rng, case, calendar, used, at)
    else:
        _running(rng, case, calendar, used, at)
    case.due_at = add_business_time(case.created_at, case.sla_minutes
                                    + case.sla_paused_minutes, calendar)
    sla.refresh(case, at)
    share = sla.clock_of(case).share(at)
    case.sla_step = next((s for s, x in (("critical", 1.5), ("breached", 1.0), ("warning", 0.75))
                          if share >= x), "none")
    return case


def _running(rng, case: SupportCase, calendar, used: float, at) -> None:
    """Consumed `used` business minutes by `at`, 10% of them after an earlier pause."""
    paused = rng.uniform(30, 600) if rng.random() < 0.1 else 0.0
    case.created_at = add_business_time(at, -(used + paused), calendar)
    if paused:
        start = add_business_time(case.created_at, used * rng.random(), calendar)
        case.sla_pauses = [{"from": start.isoformat(), "reason": "waiting_customer",
                            "to": add_business_time(start, paused, calendar).isoformat()}]
        case.sla_paused_minutes = paused


def _waiting(rng, case: SupportCase, calendar, used: float, at) -> None:
    """Waiting for the customer since up to 2 hours ago, after consuming `used`."""
    case.status = "waiting_customer"
    case.sla_paused_since = at - timedelta(minutes=rng.uniform(1, 120))
    case.created_at = add_business_time(case.sla_paused_since, -used, calendar)


def _resolved(rng, case: SupportCase, calendar, used: float, at) -> None:
    """Resolved up to 2 hours ago (its confirmation task still open)."""
    case.status = "resolved"
    case.resolved_at = at - timedelta(minutes=rng.uniform(1, 120))
    case.created_at = add_business_time(case.resolved_at, -used, calendar)


def _case_row(case: SupportCase, cases: list[CaseFacts]) -> tuple:
    """The support_case row; the facts its task needs go to `cases`."""
    name = "n2_confirm" if case.status == "resolved" else TIER_TASKS[case.tier]
    cases.append(CaseFacts(case.id, case.instance_id, case.created_at, name,
                           int(case.priority[1:]), case.calendar, case.sla_minutes,
                           case.sla_base, case.sla_frozen_share))
    return (case.id, case.customer_id, "Pagos", "Pago no aplicado", "email",
            f"Caso {case.id}", "Seeded for the inbox benchmark.", "one_user", case.segment,
            case.priority, case.status, case.tier, case.instance_id, 0, False, False, 0,
            case.sla_minutes, case.calendar, _json(case.calendar_def),
            json.dumps(case.sla_pauses), case.sla_paused_minutes, case.sla_paused_since,
            case.sla_step, case.sla_base, case.sla_frozen_share, case.sla_consumed_minutes,
            case.sla_met, "{}", case.created_at, case.due_at, case.resolved_at)


def _json(value) -> str | None:
    return None if value is None else json.dumps(value)


def _offered(rng, groups: list[str]) -> list[str]:
    """The candidate groups of a task: one (90%) or two (10%, a shared task)."""
    return rng.sample(groups, 2 if rng.random() < SHARED else 1)


def _task(rng, tid, key, names: list[str], members: dict, case: CaseFacts, at) -> tuple:
    people = members[names[0]]
    assignee = rng.choice(people) if people and rng.random() < 0.4 else None
    created = case.created_at + (at - case.created_at) * rng.random()
    due = at + timedelta(hours=rng.uniform(-48, 96))
    return (tid, case.instance_id, str(uuid.UUID(int=rng.getrandbits(128))), case.task_name,
            f"Caso {case.id}", key, json.dumps(names), names[0] if len(names) == 1 else None,
            assignee, case.rank, due,
            "approval_amount.schema.json", "approval_amount.uischema.json", "open", created,
            case.calendar, case.sla_minutes, case.sla_base, case.sla_frozen_share)
