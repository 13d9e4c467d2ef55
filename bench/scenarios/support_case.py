"""Scenario 3: support_case at a realistic mix of paths, 16 clients -- NOT IMPLEMENTED YET.

The support_case process does not exist in bpmn/ yet. When it does, add here one function:

    from bench.client import in_processes, merge
    from . import Bench, scenario

    @scenario(3, "support_case, realistic mix of paths, 16 clients", order=25)
    def support_case(bench: Bench) -> None:
        for run in range(bench.runs):
            results = merge(in_processes(support_case_loop, [...16 client arg tuples...],
                                         timeout=...))
            bench.results.add("s3.instances_per_s", "S3 instances/s", "/s",
                              results.done / (results.last - results.first))
            bench.results.add_ms("s3.call", "S3 call latency", [...], ps=(50, 95, 99))

with `support_case_loop(port, tokens, prefix, max_count, seconds, start_at)` in
bench/client.py (a module-level function so it can run in a spawned process) drawing each
path (e.g. resolved at first contact / escalated / waiting for the customer) with fixed
weights from a seeded random.Random. `clientconnect deploy bpmn/` already deploys every
process folder, so nothing else in the harness changes.
"""

from __future__ import annotations
