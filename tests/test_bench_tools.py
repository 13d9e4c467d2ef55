"""The bench's yardsticks: the machine probe and the settle wait, on real PostgreSQL and real
child processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import psycopg
from conftest import PG_URL

from bench import calibrate
from bench.stack import Stack, cpu_seconds

PSYCOPG_URL = PG_URL.replace("postgresql+psycopg://", "postgresql://")


def test_probe_measures_cpu_round_trip_and_durable_commit():
    before = _next_xid()
    found = calibrate.probe(PSYCOPG_URL)
    assert set(found) == {"cpu_ms", "pg_round_trip_us", "pg_commit_us"}
    assert all(0 < value < 10_000_000 for value in found.values())
    # every probed commit had a transaction id, so it waited for the WAL flush
    assert _next_xid() - before >= calibrate.COMMIT_REPS + 1


def _next_xid() -> int:
    with psycopg.connect(PSYCOPG_URL, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()[0])


def test_cpu_seconds_counts_a_busy_session_and_not_an_idle_one():
    busy = _child("import time\nend = time.monotonic() + 0.6\nwhile time.monotonic() < end: pass")
    idle = _child("import time; time.sleep(0.6)")
    try:
        time.sleep(0.1)
        before_busy, before_idle = cpu_seconds({busy.pid}), cpu_seconds({idle.pid})
        time.sleep(0.4)
        assert cpu_seconds({busy.pid}) - before_busy > 0.2
        assert cpu_seconds({idle.pid}) - before_idle < 0.05
    finally:
        for child in (busy, idle):
            child.wait(5)


def test_settle_waits_for_a_busy_process_and_not_for_an_idle_one():
    stack = Stack()
    stack.spawn("busy", [sys.executable, "-c",
                         "import time\nend = time.monotonic() + 1.5\n"
                         "while time.monotonic() < end: pass\ntime.sleep(30)"])
    try:
        waited = stack.settle(limit=10.0)
        assert 1.0 <= waited < 5.0
        assert stack.settle(limit=10.0) < 1.2  # now idle: one window
    finally:
        _close(stack)


def test_settle_gives_up_at_its_limit():
    stack = Stack()
    stack.spawn("spin", [sys.executable, "-c", "while True: pass"])
    try:
        assert 1.0 <= stack.settle(limit=1.0) < 2.0
    finally:
        _close(stack)


def _close(stack: Stack) -> None:
    stack.close()
    shutil.rmtree(stack.tmp)


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
