"""Scenario 5: 10,000 timers due within the same minute; lateness with one ticker, then two.

bench/bpmn/bench_timer waits on a timeDate taken from the start variable `due`. One template
instance is started over HTTP with a far-future `due`; its real engine state (zlib JSON) is
cloned per timer with the due time substituted, and written with its timer job by COPY
(seeding is not measured). Due times are spread evenly over `s5_spread` seconds starting
`s5_lead` s after seeding. The `clientconnect ticker` processes (already running) fire them;
lateness = `at` of the instance's `timer_fired` event minus its due time. Timers still unfired
at the time limit count with lateness = the limit minus due (a lower bound) and are reported.
"""

from __future__ import annotations

import time
import zlib
from datetime import timedelta

from bench import seed
from bench.client import Api
from bench.report import pct

from . import Bench, scenario

TEMPLATE_DUE = "2099-01-01T00:00:00+00:00"


@scenario(5, "timers: 10,000 due in the same minute, 1 then 2 tickers", order=50)
def timers(bench: Bench) -> None:
    stack, res, sizes = bench.stack, bench.results, bench.sizes
    n, spread = sizes["s5_timers"], sizes["s5_spread"]
    template = _template(stack)
    for tickers in (1, 2):
        for run in range(bench.runs):
            stack.set_tickers(tickers)
            time.sleep(2.0)  # a new ticker is importing and connecting
            late, unfired, rate = _one_run(stack, template, n, spread, sizes, f"{tickers}-{run}")
            key, label = f"s5.t{tickers}", f"S5 {tickers} ticker{'s' if tickers > 1 else ''}"
            res.add(f"{key}.p50", f"{label} lateness p50", "s", pct(late, 50))
            res.add(f"{key}.p99", f"{label} lateness p99", "s", pct(late, 99), ("<=", 2.0))
            res.add(f"{key}.max", f"{label} lateness max", "s", max(late))
            res.add(f"{key}.rate", f"{label} timers fired/s", "/s", rate)
            res.add(f"{key}.unfired", f"{label} unfired at the limit", "", unfired)
    stack.set_tickers(1)
    res.note(f"S5: {n} timers due evenly over {spread:g}s; ticker interval 0.5s (the app's "
             "default); 'fired/s' = timers / (last fire - first due).")


def _template(stack) -> dict:
    api = Api(stack.port, stack.tokens["ana"])
    inst, _ = api.call("POST", "/api/instances", {"process_key": "bench_timer",
                                                  "variables": {"due": TEMPLATE_DUE}},
                       expect=201)
    api.close()
    with stack.connect() as conn:
        definition_id, state = conn.execute(
            "SELECT definition_id, state FROM process_instance WHERE id = %s",
            (inst["id"],)).fetchone()
        job = conn.execute("SELECT spiff_task_id, element_id FROM job WHERE instance_id = %s "
                           "AND kind = 'timer'", (inst["id"],)).fetchone()
    text = zlib.decompress(state).decode()
    if job is None or TEMPLATE_DUE not in text:
        raise RuntimeError("the template instance is not waiting on its timer")
    return {"definition_id": definition_id, "text": text, "spiff_task_id": job[0],
            "element_id": job[1]}


def _one_run(stack, template: dict, n: int, spread: float, sizes: dict, tag: str):
    t_seed = time.monotonic()
    first_due = seed.now() + timedelta(seconds=sizes["s5_lead"])
    dues = [first_due + timedelta(seconds=spread * i / n) for i in range(n)]
    with stack.connect() as conn:
        ids = seed.alloc_ids(conn, "process_instance", n)
        at = seed.now()
        seed.copy_rows(conn, "process_instance", seed.INSTANCE_COLS, (
            seed.instance_row(iid, template["definition_id"], "bench_timer", f"s5-{tag}-{i}",
                              zlib.compress(template["text"].replace(
                                  TEMPLATE_DUE, due.isoformat()).encode(), 6), at)
            for i, (iid, due) in enumerate(zip(ids, dues, strict=True))))
        seed.copy_rows(conn, "job", seed.JOB_COLS, (
            (iid, "timer", template["spiff_task_id"], template["element_id"], "{}", "pending",
             due, 0, 1, at) for iid, due in zip(ids, dues, strict=True)))
        seed.copy_rows(conn, "event", seed.EVENT_COLS, (seed.started_event(i, at) for i in ids))
        conn.execute("ANALYZE job")
    if seed.now() >= first_due:
        raise RuntimeError(f"seeding took {time.monotonic() - t_seed:.1f}s, past the first due")
    fired = _wait(stack, ids, spread + sizes["s5_limit"], first_due)
    limit_at = seed.now()
    due_of = dict(zip(ids, dues, strict=True))
    late = [((fired.get(i) or limit_at) - due_of[i]).total_seconds() for i in ids]
    last = max(fired.values()) if fired else limit_at
    rate = len(fired) / max(1e-9, (last - first_due).total_seconds())
    with stack.connect() as conn:
        stack.set_tickers(0)  # the limit may leave timers firing: stop before checking
        tasks = conn.execute("SELECT count(*) FROM task WHERE name = 'after_due' AND "
                             "instance_id = ANY(%s)", (list(fired),)).fetchone()[0]
        # done: drop the batch (cascades to tasks, jobs, events) so later scenarios start clean
        conn.execute("DELETE FROM process_instance WHERE id BETWEEN %s AND %s",
                     (ids[0], ids[-1]))
    if tasks != len(fired):
        raise RuntimeError(f"{len(fired)} timers fired but {tasks} follow-up tasks exist")
    print(f"   {tag}: {len(fired)}/{n} fired, p99 lateness {pct(late, 99):.2f}s", flush=True)
    return late, n - len(fired), rate


def _wait(stack, ids: list[int], limit: float, first_due) -> dict:
    """Poll the timer_fired events of the batch until all fired or `limit` s after first due."""
    deadline = first_due + timedelta(seconds=limit)
    query = ("SELECT instance_id, at FROM event WHERE kind = 'timer_fired' "
             "AND instance_id BETWEEN %s AND %s")
    with stack.connect() as conn:
        while True:
            time.sleep(1.0)
            count = conn.execute(query.replace("instance_id, at", "count(*)"),
                                 (ids[0], ids[-1])).fetchone()[0]
            if count >= len(ids) or seed.now() >= deadline:
                return dict(conn.execute(query, (ids[0], ids[-1])).fetchall())
