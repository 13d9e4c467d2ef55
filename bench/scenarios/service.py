"""Scenario 6: service tasks through RQ with 2 workers: jobs/s end to end.

bench/bpmn/bench_service is start -> http_request (POST to the bench's echo server on
127.0.0.1) -> end. Per run, with the RQ workers stopped, client processes start N instances
over HTTP: the engine creates each job and the web process enqueues it in Redis. Then the 2
`clientconnect worker` processes start and drain the queue: connector call, engine step,
completion. jobs/s = completions / (last - first completion) (from the `service_task_completed`
events); "incl. startup" counts from the moment the workers were launched.
"""

from __future__ import annotations

import sys
import time

from redis import Redis

from bench.client import in_processes, merge, start_loop
from bench.stack import BENCH, REDIS_URL, free_port

from . import Bench, scenario

QUEUE = "rq:queue:clientconnect"


@scenario(6, "service tasks through RQ, 2 workers", order=40)
def service(bench: Bench) -> None:
    stack, res, sizes = bench.stack, bench.results, bench.sizes
    port = free_port()
    stack.spawn("echo", [sys.executable, str(BENCH / "echo_server.py"), str(port), "3600"])
    workers = stack.n_workers
    try:
        for run in range(bench.runs):
            starts, rate, with_startup, done = _one_run(bench, port, run, workers)
            res.add("s6.jobs_per_s", f"S6 service-task jobs/s ({workers} workers)", "/s", rate,
                    (">=", 300.0))
            res.add("s6.jobs_per_s_startup", "S6 jobs/s incl. worker startup", "/s",
                    with_startup)
            res.add("s6.starts_per_s", "S6 instance starts/s (engine -> job -> Redis)", "/s",
                    starts)
            res.add("s6.completed", "S6 instances completed", "", done)
    finally:
        stack.set_workers(workers)
        stack.stop("echo")
    res.note(f"S6: {sizes['s6_jobs']} instances per run started by {sizes['s6_clients']} "
             "clients with the workers stopped, then drained by the workers.")


def _one_run(bench: Bench, port: int, run: int, workers: int):
    stack, sizes = bench.stack, bench.sizes
    n, clients = sizes["s6_jobs"], sizes["s6_clients"]
    stack.set_workers(0)
    url = f"http://127.0.0.1:{port}/accounts"
    batches = [[{"url": url, "case": i} for i in range(c, n, clients)] for c in range(clients)]
    args = [(stack.port, stack.tokens["ana"], "bench_service", batch, f"s6-{run}-{c}",
             sizes["s6_limit"]) for c, batch in enumerate(batches)]
    started = merge(in_processes(start_loop, args, timeout=sizes["s6_limit"] + 60))
    bench.results.errors += [f"s6: {e}" for e in started.errors[:3]]
    starts = started.done / max(1e-9, started.last - started.first)
    queued = Redis.from_url(REDIS_URL).llen(QUEUE)
    launched = time.time()
    stack.set_workers(workers)
    spy = None
    if bench.profile and run == 0:
        from bench.profile import RESULTS, spy_start
        path = RESULTS / f"profile-{bench.results.started}-rq-worker.txt"
        RESULTS.mkdir(exist_ok=True)
        spy = (spy_start(stack.pids("worker-")[0], min(20.0, 2.0 + n / 40), path), path)
    completions = _wait(stack, f"s6-{run}-%", started.done, sizes["s6_limit"])
    if spy:
        from bench.profile import spy_finish
        spy_finish(spy[0], spy[1], "perform_job", "an RQ worker running jobs", bench.results,
                   "profile_rq_worker")
    if len(completions) < 2:
        raise RuntimeError(f"only {len(completions)} of {started.done} jobs completed "
                           f"({queued} were queued)")
    first, last = completions[0], completions[-1]
    rate = (len(completions) - 1) / max(1e-9, last - first)
    with_startup = len(completions) / max(1e-9, last - launched)
    print(f"   run {run}: {started.done} started ({starts:.0f}/s), {queued} queued, "
          f"{len(completions)} completed at {rate:.0f}/s", flush=True)
    return starts, rate, with_startup, len(completions)


def _wait(stack, pattern: str, n: int, limit: float) -> list[float]:
    """Epoch times of the batch's service_task_completed events, polled until n or `limit`."""
    query = ("SELECT extract(epoch FROM e.at) FROM event e JOIN process_instance p "
             "ON p.id = e.instance_id WHERE e.kind = 'service_task_completed' "
             "AND p.business_key LIKE %s ORDER BY e.at")
    deadline = time.monotonic() + limit
    with stack.connect() as conn:
        while True:
            time.sleep(0.5)
            count = conn.execute(f"SELECT count(*) FROM ({query}) q", (pattern,)).fetchone()[0]
            if count >= n or time.monotonic() >= deadline:
                return [float(r[0]) for r in conn.execute(query, (pattern,))]
