"""Round trips per API call: SQL statements, commits and pool checkouts of the scenario-1
calls, counted with SQLAlchemy events (tests/test_statement_budget.py holds the budgets).

    python bench/statements.py N        (with the stack's env: DATABASE_URL, REDIS_URL...)

Runs in its own process (the bench itself never imports the app): builds the app with
app.wsgi.make_app, drives N lifecycles through Flask's test client (no HTTP), prints JSON
{call: {"statements", "commits", "checkouts"}} averaged per call.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

from sqlalchemy import event

from app.wsgi import make_app


def main(n: int) -> dict:
    app = make_app()
    engine = app.extensions["clientconnect"].sessions.kw["bind"]
    counts: Counter = Counter()
    event.listen(engine, "before_cursor_execute", lambda *a: counts.update(["statements"]))
    event.listen(engine, "commit", lambda *a: counts.update(["commits"]))
    event.listen(engine.pool, "checkout", lambda *a: counts.update(["checkouts"]))
    client = app.test_client()
    tokens = {u: _token(app, u) for u in ("ana", "bruno")}
    totals: dict[str, Counter] = defaultdict(Counter)
    calls: Counter = Counter()

    def call(name, user, method, path, body=None):
        counts.clear()
        answer = client.open(path, method=method, json=body,
                             headers={"Authorization": f"Bearer {tokens[user]}"})
        assert answer.status_code in (200, 201), (path, answer.status_code, answer.data[:200])
        totals[name].update(counts)
        calls[name] += 1
        return answer.get_json()

    for i in range(n):
        inst = call("start", "ana", "POST", "/api/instances",
                    {"process_key": "approval", "business_key": f"stmt-{i}"})
        a = call("list_tasks", "ana", "GET", f"/api/tasks?instance_id={inst['id']}")
        call("complete_a", "ana", "POST", f"/api/tasks/{a['items'][0]['id']}/complete",
             {"data": {"amount": 3}})
        b = call("list_tasks", "bruno", "GET", f"/api/tasks?instance_id={inst['id']}")
        call("complete_b", "bruno", "POST", f"/api/tasks/{b['items'][0]['id']}/complete",
             {"data": {"approved": True}})
        call("status", "ana", "GET", f"/api/instances/{inst['id']}")
    return {name: {k: round(v / calls[name], 2) for k, v in totals[name].items()}
            for name in calls}


def _token(app, username: str) -> str:
    from app.services.users import create_token
    return create_token(app.extensions["clientconnect"], username)


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
