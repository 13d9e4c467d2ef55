"""Scenario 1: the two-task approval, one sequential client, on SQLite (embedded) and PostgreSQL.

Per call p50/p95 (start, list tasks, complete A, complete B, status), the full lifecycle
p50/p95 (start -> list -> complete A -> list -> complete B -> status, six calls) and
instances per second. On PostgreSQL with --profile, py-spy samples the gunicorn workers
during one more batch (see bench/profile.py).
"""

from __future__ import annotations

from bench.client import in_processes, lifecycle_loop

from . import Bench, scenario

CALLS = ("start", "list_tasks", "complete_a", "complete_b", "status")
LIFECYCLE_TARGET_MS = {"sqlite": 12.0, "pg": 16.0}
COMPLETION_TARGET_MS = 3.0


@scenario(1, "two-task approval, sequential single client",
          backends=("sqlite", "postgresql"), order=10)
def sequential(bench: Bench) -> None:
    stack, res, db = bench.stack, bench.results, bench.short
    n = bench.sizes["s1_lifecycles"]
    limit = bench.sizes["s1_seconds"]
    for run in range(bench.runs):
        args = (stack.port, stack.tokens, f"s1-{db}-{run}", n, limit, None,
                bench.sizes["s1_warmup"] if run == 0 else 0)
        result = in_processes(lifecycle_loop, [args], timeout=limit + 120)[0]
        res.errors += [f"s1 {db}: {e}" for e in result.errors[:5]]
        s = result.samples
        for call in CALLS:
            res.add_ms(f"s1.{db}.{call}", f"S1 {db} {call}", s.get(call, []))
        completions = s.get("complete_a", []) + s.get("complete_b", [])
        res.add_ms(f"s1.{db}.complete", f"S1 {db} task completion (A+B)", completions,
                   targets={50: ("<=", COMPLETION_TARGET_MS)})
        res.add_ms(f"s1.{db}.lifecycle", f"S1 {db} lifecycle (6 calls)", s.get("lifecycle", []),
                   targets={50: ("<=", LIFECYCLE_TARGET_MS[db])})
        res.add(f"s1.{db}.instances_per_s", f"S1 {db} instances/s (1 client)", "/s",
                result.done / max(1e-9, result.last - result.first))
    res.note("S1 lifecycle = 6 HTTP calls in sequence (start, list A, complete A, list B, "
             "complete B, status); the 'task completion' figure pools complete A and B.")
    if bench.profile and db == "pg":
        from bench.profile import profile_lifecycles
        profile_lifecycles(bench)
