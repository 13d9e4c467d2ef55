"""Scenario 3: support_case at a realistic mix of paths, 16 client processes (PostgreSQL).

bpmn/support_case is deployed with its reference data, a team (post-sale N1 agents, one agent
per N2/N3 group of the routing table) and 300 customers (bench/support_data.py). Each client
(bench/support_client.py, a seeded random.Random per client) loops for `s3_seconds`: register
a case for a random customer, product and typology, then walk it along a path drawn with the
shares of app/demo_data/mix.py: N1 resolves at first contact 35%, N1 escalates and N2 resolves
35%, misroute (N2 returns it, the right N2 group resolves) 10%, incident (N2 -> N3 fixes -> N2
confirms) 12%, info request (N1 asks, the `customer_info` message answers, N1 resolves) 8%.
Every step lists the instance's open task as a user of the right group and completes it; the
case must end `resolved` at the expected tier and product, or the path counts as failed. Each
client first walks `s3_warmup` cases that are not measured.

Every case also starts its `sla_watch` instance and queues the notification e-mails and SLA
messages that the 2 RQ workers run (the ticker runs as usual): after each run the bench waits
for those jobs to drain and checks one sla_watch instance per case, no major incident, no
failed job and no open incident.

The mass-incident rule is out of reach (CLIENTCONNECT_MASS_INCIDENT_CASES=10000, set by
bench/stack.py): at most one case per client is open at a time, so no major incident opens
and no case is linked; the rule's query still runs at every registration.
"""

from __future__ import annotations

import time
from collections import Counter

from bench import support_data
from bench.client import Api, in_processes, merge
from bench.stack import ROOT
from bench.support_client import PATHS, support_loop

from . import Bench, scenario

CALLS = ("register", "list_tasks", "complete", "message", "case")
DRAIN_LIMIT = 120.0
PROCESSES = ("support_case", "sla_watch", "major_incident")


@scenario(3, "support_case, realistic mix of paths, 16 clients", order=25)
def support_case(bench: Bench) -> None:
    stack, res, sizes = bench.stack, bench.results, bench.sizes
    clients, seconds = sizes["s3_clients"], sizes["s3_seconds"]
    setup = _setup(stack)
    paths: Counter = Counter()
    for run in range(bench.runs):
        start_at = time.time() + 3.0 + 2.0 * sizes["s3_warmup"]  # all spawned and warm
        args = [(stack.port, stack.tokens, setup, 3000 + 100 * run + c, seconds, start_at,
                 sizes["s3_warmup"]) for c in range(clients)]
        result = merge(in_processes(support_loop, args, timeout=seconds + 180))
        res.errors += [f"s3: {e}" for e in result.errors[:5]]
        _figures(res, result, clients)
        paths.update({k.split(":", 1)[1]: len(v) for k, v in result.samples.items()
                      if k.startswith("path:")})
        took, background = _drain(stack, res)
        res.add("s3.drain_s", "S3 background jobs drained after the run", "s", took)
    shares = ", ".join(f"{p} {100 * paths[p] / max(1, paths.total()):.0f}%" for p in PATHS)
    res.note(f"S3: {clients} client processes, each walking cases for {seconds:g}s; "
             f"paths completed: {shares}; mass-incident rule out of reach; in the database "
             f"at the end: {background}.")


def _setup(stack) -> dict:
    """What every client needs: the catalog (with the routed groups), who is in each group,
    and the customers."""
    api = Api(stack.port, stack.tokens["olga"])
    products, _ = api.call("GET", "/api/products")
    api.close()
    catalog = {p["name"]: {"n2_group": p["n2_group"], "n3_group": p["n3_group"],
                           "typologies": {t["name"]: t["n1_resolvable"] for t in p["typologies"]}}
               for p in products["items"] if p["active"] and p["typologies"] and p["n2_group"]}
    staff: dict[str, list[str]] = {}
    for user, group in support_data.team(ROOT).items():
        staff.setdefault(group, []).append(user)
    customers = [{"id": c["id"], "n1_agent": c["n1_agent"]} for c in support_data.customers()]
    return {"catalog": catalog, "staff": staff, "customers": customers}


def _figures(res, result, clients: int) -> None:
    elapsed = max(1e-9, result.last - result.first)
    s = result.samples
    res.add("s3.cases_per_s", f"S3 cases resolved/s ({clients} clients)", "/s",
            result.done / elapsed)
    res.add("s3.completions_per_s", "S3 task completions/s", "/s",
            len(s.get("complete", [])) / elapsed)
    res.add_ms("s3.call", "S3 call latency (all calls)", [v for c in CALLS for v in s.get(c, [])],
               ps=(50, 95, 99))
    res.add_ms("s3.register", "S3 register latency", s.get("register", []))
    res.add_ms("s3.complete", "S3 task completion latency", s.get("complete", []))
    res.add_ms("s3.list_tasks", "S3 task list latency", s.get("list_tasks", []))
    res.add_ms("s3.case_walk", "S3 case, registered to resolved", s.get("case_walk", []))
    res.add("s3.errors", "S3 failed paths", "", len(result.errors))


def _drain(stack, res) -> tuple[float, str]:
    """Seconds until no job of the support flow is due and unfinished (bounded); then check
    one sla_watch instance per case, no major incident, no failed job or open incident."""
    began = time.monotonic()
    due = ("SELECT count(*) FROM job j JOIN process_instance p ON p.id = j.instance_id "
           "WHERE p.process_key = ANY(%s) AND j.status IN ('pending', 'running') "
           "AND j.due_at <= now()")
    with stack.connect() as conn:
        while conn.execute(due, (list(PROCESSES),)).fetchone()[0]:
            if time.monotonic() - began > DRAIN_LIMIT:
                res.errors.append(f"s3: background jobs not drained in {DRAIN_LIMIT:g}s")
                break
            time.sleep(0.2)
        took = time.monotonic() - began
        return took, _check_background(conn, res)


def _check_background(conn, res) -> str:
    counts = dict(conn.execute(
        "SELECT process_key, count(*) FROM process_instance WHERE process_key = ANY(%s) "
        "GROUP BY process_key", (list(PROCESSES),)).fetchall())
    failed, incidents = conn.execute(
        "SELECT (SELECT count(*) FROM job j JOIN process_instance p ON p.id = j.instance_id "
        "        WHERE p.process_key = ANY(%(keys)s) AND j.status = 'failed'), "
        "       (SELECT count(*) FROM incident i JOIN process_instance p "
        "        ON p.id = i.instance_id WHERE p.process_key = ANY(%(keys)s) "
        "        AND i.status = 'open')", {"keys": list(PROCESSES)}).fetchone()
    events = dict(conn.execute(  # done jobs are deleted: count what they left in the history
        "SELECT e.kind, count(*) FROM event e JOIN process_instance p ON p.id = e.instance_id "
        "WHERE p.process_key = ANY(%s) AND e.kind IN ('service_task_completed', "
        "'message_received') GROUP BY e.kind", (list(PROCESSES),)).fetchall())
    if counts.get("sla_watch", 0) != counts.get("support_case", 0):
        res.errors.append(f"s3: {counts.get('support_case', 0)} cases but "
                          f"{counts.get('sla_watch', 0)} sla_watch instances")
    if counts.get("major_incident"):
        res.errors.append(f"s3: {counts['major_incident']} major incidents opened")
    if failed or incidents:
        res.errors.append(f"s3: {failed} failed jobs, {incidents} open incidents")
    return (f"{counts.get('support_case', 0)} cases, {counts.get('sla_watch', 0)} sla_watch "
            f"instances, {events.get('service_task_completed', 0)} e-mail service tasks run, "
            f"{events.get('message_received', 0)} messages received")
