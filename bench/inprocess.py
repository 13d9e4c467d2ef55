"""The scenario-1 lifecycle without HTTP: Flask's test client in one process, on PostgreSQL,
alternating lifecycles between the app as configured and the same app whose connections run
`SET synchronous_commit = off` — interleaved, so load from other processes hits both alike.

    python bench/inprocess.py N        (with the stack's env: DATABASE_URL, REDIS_URL...)

Prints JSON {"durable"|"no_fsync": {call: p50 ms}}: what the app costs per call before
gunicorn and HTTP, and how much of it is waiting for the WAL flush.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from sqlalchemy import event, text

from app.services.users import create_token
from app.wsgi import make_app


def _app(no_fsync: bool):
    app = make_app()
    if no_fsync:
        engine = app.extensions["clientconnect"].sessions.kw["bind"]

        @event.listens_for(engine, "connect")
        def _no_fsync(dbapi_connection, _record):
            dbapi_connection.execute("SET synchronous_commit = off")
            dbapi_connection.commit()
    return app


def main(n: int) -> dict:
    apps = {"durable": _app(False), "no_fsync": _app(True)}
    ctx = apps["durable"].extensions["clientconnect"]
    tokens = {u: create_token(ctx, u) for u in ("ana", "bruno")}
    times = {mode: {} for mode in apps}

    def call(mode, name, user, method, path, body=None):
        client = apps[mode].test_client()
        began = time.perf_counter()
        answer = client.open(path, method=method, json=body,
                             headers={"Authorization": f"Bearer {tokens[user]}"})
        times[mode].setdefault(name, []).append(time.perf_counter() - began)
        assert answer.status_code in (200, 201), (path, answer.status_code)
        return answer.get_json()

    for i in range(n + 4):
        mode = "durable" if i % 2 == 0 else "no_fsync"
        began = time.perf_counter()
        inst = call(mode, "start", "ana", "POST", "/api/instances",
                    {"process_key": "approval", "business_key": f"inproc-{i}"})
        a = call(mode, "list_tasks", "ana", "GET", f"/api/tasks?instance_id={inst['id']}")
        call(mode, "complete_a", "ana", "POST", f"/api/tasks/{a['items'][0]['id']}/complete",
             {"data": {"amount": 3}})
        b = call(mode, "list_tasks", "bruno", "GET", f"/api/tasks?instance_id={inst['id']}")
        call(mode, "complete_b", "bruno", "POST", f"/api/tasks/{b['items'][0]['id']}/complete",
             {"data": {"approved": True}})
        call(mode, "status", "ana", "GET", f"/api/instances/{inst['id']}")
        times[mode].setdefault("lifecycle", []).append(time.perf_counter() - began)
        if i == 3:  # the first two of each mode warm caches
            times = {m: {} for m in apps}
    found = {mode: {name: round(statistics.median(v) * 1000, 2) for name, v in calls.items()}
             for mode, calls in times.items()}
    for mode, app in apps.items():  # prove each engine runs the setting it claims
        with app.extensions["clientconnect"].unit() as session:
            found[mode]["synchronous_commit"] = session.execute(
                text("SHOW synchronous_commit")).scalar()
    return found


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)))
