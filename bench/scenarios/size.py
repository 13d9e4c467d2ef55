"""Scenario 7: database rows and bytes per completed scenario-1 instance; RSS of the processes.

Per run, one client process completes `s7_lifecycles` approval lifecycles. Rows are counted
in every table that has an `instance_id` column (found in information_schema, so tables
added later are included), plus the instance row and the task_group rows of its tasks; bytes
are the sum of pg_column_size(row) of those rows (TOASTed state counted compressed, as
stored). The on-disk growth of all tables and their indexes (pg_total_relation_size before
and after, divided by the instances) is reported as an approximation. RSS is VmRSS from
/proc/<pid>/status of the gunicorn workers, RQ workers and tickers after everything else ran.
"""

from __future__ import annotations

from bench.client import in_processes, lifecycle_loop
from bench.stack import rss_mb

from . import Bench, scenario

TOTAL_SIZE = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = current_schema() AND c.relkind = 'r'")


@scenario(7, "size per completed instance; RSS", order=70)
def size(bench: Bench) -> None:
    stack, res = bench.stack, bench.results
    for run in range(bench.runs):
        with stack.connect() as conn:
            before = conn.execute(TOTAL_SIZE).fetchone()[0]
        prefix = f"s7-{run}"
        args = (stack.port, stack.tokens, prefix, bench.sizes["s7_lifecycles"], 300.0)
        result = in_processes(lifecycle_loop, [args], timeout=400)[0]
        res.errors += [f"s7: {e}" for e in result.errors[:3]]
        with stack.connect() as conn:
            after = conn.execute(TOTAL_SIZE).fetchone()[0]
            per_table, n, state = _measure(conn, prefix)
        rows = sum(c for c, _ in per_table.values()) / n
        size_bytes = sum(b for _, b in per_table.values()) / n
        res.add("s7.rows", "S7 rows per completed instance", "rows", rows, ("<=", 8.0))
        res.add("s7.kb", "S7 row bytes per completed instance", "kB", size_bytes / 1024,
                ("<=", 6.0))
        res.add("s7.state_kb", "S7 of which instance state", "kB", state / 1024)
        res.add("s7.disk_kb", "S7 on-disk growth per instance incl. indexes (approx.)", "kB",
                (after - before) / n / 1024)
        res.extra.setdefault("s7_per_table", []).append(
            {t: {"rows": c / n, "bytes": b / n} for t, (c, b) in per_table.items()})
        _rss(stack, res)  # once per run, after this run's load
    res.note("S7: kB = 1024 bytes; per-table rows and bytes are in the JSON (extra.s7_per_table).")


def _measure(conn, prefix: str):
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM process_instance WHERE business_key LIKE %s AND status = 'completed'",
        (prefix + "-%",))]
    if not ids:
        raise RuntimeError("no completed instance to measure")
    tables = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND column_name = 'instance_id' ORDER BY table_name")]
    per_table = {"process_instance": _count(conn, "process_instance", "id", ids)}
    for table in tables:
        per_table[table] = _count(conn, table, "instance_id", ids)
    task_ids = [r[0] for r in conn.execute("SELECT id FROM task WHERE instance_id = ANY(%s)",
                                           (ids,))]
    per_table["task_group"] = _count(conn, "task_group", "task_id", task_ids)
    state = conn.execute("SELECT sum(pg_column_size(state)) FROM process_instance "
                         "WHERE id = ANY(%s)", (ids,)).fetchone()[0]
    return per_table, len(ids), state / len(ids)


def _count(conn, table: str, column: str, ids: list[int]) -> tuple[int, int]:
    count, size = conn.execute(
        f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t "
        f"WHERE {column} = ANY(%s)", (ids,)).fetchone()
    return int(count), int(size)


def _rss(stack, res) -> None:
    groups = {"web": stack.web_pids(), "worker": stack.pids("worker-"),
              "ticker": stack.pids("ticker-")}
    for name, pids in groups.items():
        values = [v for v in map(rss_mb, pids) if v is not None]
        if not values:
            continue
        target = ("<=", 150.0) if name == "web" else None
        label = {"web": "gunicorn worker", "worker": "RQ worker", "ticker": "ticker"}[name]
        res.add(f"s7.rss.{name}.max", f"S7 RSS {label} (max of {len(values)})", "MB",
                max(values), target)
    master = stack.procs.get("web")
    if master and (value := rss_mb(master.pid)):
        res.add("s7.rss.web_master", "S7 RSS gunicorn master", "MB", value)
