"""Scenario 2: the same approval lifecycle from 16 concurrent client processes (PostgreSQL).

Instances/s and task completions/s over the measured window, and p50/p95/p99 of every
call (all six kinds pooled) plus of completions and of whole lifecycles.
"""

from __future__ import annotations

import time

from bench.client import in_processes, lifecycle_loop, merge

from . import Bench, scenario

CALLS = ("start", "list_tasks", "complete_a", "complete_b", "status")


@scenario(2, "two-task approval, 16 concurrent clients", order=20)
def concurrent(bench: Bench) -> None:
    stack, res = bench.stack, bench.results
    clients, seconds = bench.sizes["s2_clients"], bench.sizes["s2_seconds"]
    for run in range(bench.runs):
        start_at = time.time() + 3.0 + 2.0 * bench.sizes["s2_warmup"]  # all spawned and warm
        args = [(stack.port, stack.tokens, f"s2-{run}-{c}", 100_000, seconds, start_at,
                 bench.sizes["s2_warmup"])
                for c in range(clients)]
        result = merge(in_processes(lifecycle_loop, args, timeout=seconds + 180))
        res.errors += [f"s2: {e}" for e in result.errors[:5]]
        elapsed = max(1e-9, result.last - result.first)
        s = result.samples
        calls = [v for c in CALLS for v in s.get(c, [])]
        completions = s.get("complete_a", []) + s.get("complete_b", [])
        res.add("s2.instances_per_s", f"S2 instances/s ({clients} clients)", "/s",
                result.done / elapsed, (">=", 100.0))
        res.add("s2.completions_per_s", "S2 task completions/s", "/s",
                len(completions) / elapsed)
        res.add_ms("s2.call", "S2 call latency (all calls)", calls, ps=(50, 95, 99),
                   targets={99: ("<=", 100.0)})
        res.add_ms("s2.complete", "S2 task completion latency", completions, ps=(50, 95, 99))
        res.add_ms("s2.start", "S2 start latency", s.get("start", []), ps=(50, 99))
        res.add_ms("s2.lifecycle", "S2 lifecycle", s.get("lifecycle", []), ps=(50, 99))
        res.add("s2.errors", "S2 failed lifecycles", "", len(result.errors))
    res.note(f"S2: {clients} client processes, each looping lifecycles for {seconds:g}s; "
             f"gunicorn {stack.web_workers} workers x {stack.web_threads} threads.")
