"""The machine's own speed at the moment of a scenario: the yardstick for comparing runs.

The same code measures up to 2-3x apart on this machine kind from one hour to the next, so
every scenario is bracketed by three probes that involve none of the app:

- cpu: one fixed pure-Python workload (JSON round trips and dict work of the size an engine
  step handles), p50 over `CPU_REPS` repetitions, in ms;
- pg round trip: `SELECT 1` on an autocommit connection, p50, in µs;
- pg durable commit: `BEGIN; SELECT pg_current_xact_id(); COMMIT` (the transaction has an
  id, so its COMMIT waits for the WAL flush, as every write unit's does), p50, in µs.

Two runs whose probes agree ran on the same machine speed; where they differ, so do the
scenario figures, by about as much.
"""

from __future__ import annotations

import json
import statistics
import time

import psycopg

CPU_REPS = 15
PG_REPS = 200
COMMIT_REPS = 60
_DOC = {"tasks": [{"id": f"{i:032x}", "state": 64, "data": {"amount": i, "approved": True,
                                                            "notes": "x" * 40}}
                  for i in range(40)], "spec": "approval", "version": 3}


def probe(pg_url: str) -> dict[str, float]:
    """{cpu_ms, pg_round_trip_us, pg_commit_us} now, on this machine."""
    found = {"cpu_ms": _p50(_cpu_work, CPU_REPS) * 1e3}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        found["pg_round_trip_us"] = _p50(lambda: conn.execute("SELECT 1").fetchall(),
                                         PG_REPS) * 1e6
        conn.autocommit = False
        found["pg_commit_us"] = _p50(lambda: _durable_commit(conn), COMMIT_REPS) * 1e6
    return {key: round(value, 2) for key, value in found.items()}


def _cpu_work() -> None:
    for _ in range(60):
        doc = json.loads(json.dumps(_DOC))
        sorted(doc["tasks"], key=lambda t: (t["data"]["amount"] % 7, t["id"]))


def _durable_commit(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_current_xact_id()").fetchall()
    conn.commit()


def _p50(work, reps: int) -> float:
    work()  # warm
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)
