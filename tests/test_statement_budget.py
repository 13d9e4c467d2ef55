"""Round trips per API call: the SQL statements, transactions and pool checkouts of each call
of the scenario-1 lifecycle (bench/README.md) may not grow back. Counted with SQLAlchemy
events through the Flask test client, on SQLite and PostgreSQL.

Measured before these budgets (PostgreSQL, plus a separate token transaction per call and a
pool_pre_ping `SELECT 1` per checkout): start 12, list 5, complete A 15, complete B 19,
status 8 statements, 2 transactions each. Then, with the ORM: 5, 3, 8, 6, 4 and one
transaction each. Now the engine step writes with prebuilt Core statements (one per table),
reads run outside a write transaction and a page that is not full needs no count; a
completion locks its instance and reads its open tasks in one statement, and the status reads
whether the instance has open incidents with the instance row.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Integer, bindparam, delete, event, func, select, text, update

from app.persistence import db
from app.persistence.models import ApiToken, ProcessInstance
from app.services import inbox
from app.services.caches import TokenCache

# statements per call once the caller's token is known (SQLite's BEGIN not counted)
BUDGET = {"start": 4, "list_a": 1, "complete_a": 5, "list_b": 1, "complete_b": 4, "status": 2}
WRITES = {"start", "complete_a", "complete_b"}  # one transaction each; reads commit nothing


class Counting:
    def __init__(self, engine):
        self.counts, self.sql = Counter(), []
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", lambda *a: self.counts.update(["commits"]))
        event.listen(engine, "checkout", lambda *a: self.counts.update(["checkouts"]))

    def _statement(self, _conn, _cursor, statement, *_args) -> None:
        if statement.strip().upper().startswith("BEGIN"):
            return
        self.counts.update(["statements"])
        self.sql.append(" ".join(statement.split())[:120])

    def reset(self) -> None:
        self.counts.clear()
        self.sql.clear()


def _lifecycle(as_user, counting, key: str) -> dict[str, tuple[Counter, list[str]]]:
    seen = {}

    def call(name, user, method, path, body=None):
        counting.reset()
        answer = as_user[user].open(path, method=method, json=body)
        assert answer.status_code in (200, 201), answer.get_json()
        seen[name] = (Counter(counting.counts), list(counting.sql))
        return answer.get_json()

    started = call("start", "ana", "POST", "/api/instances",
                   {"process_key": "approval", "business_key": key})
    a = call("list_a", "ana", "GET", f"/api/tasks?instance_id={started['id']}")
    call("complete_a", "ana", "POST", f"/api/tasks/{a['items'][0]['id']}/complete",
         {"data": {"amount": 21}})
    b = call("list_b", "bruno", "GET", f"/api/tasks?instance_id={started['id']}")
    call("complete_b", "bruno", "POST", f"/api/tasks/{b['items'][0]['id']}/complete",
         {"data": {"approved": True}})
    status = call("status", "ana", "GET", f"/api/instances/{started['id']}")
    assert status["status"] == "completed" and status["variables"]["total"] == 42
    return seen


def test_each_call_stays_within_its_statement_budget(as_user, approval, ctx):
    counting = Counting(ctx.sessions.kw["bind"])
    _lifecycle(as_user, counting, "warm-up")  # tokens and definition now known

    for name, (counts, sql) in _lifecycle(as_user, counting, "measured").items():
        assert counts["statements"] <= BUDGET[name], (name, sql)
        assert counts["commits"] == (name in WRITES), (name, sql)  # no separate auth
        assert counts["checkouts"] == 1, (name, sql)


def test_the_first_call_of_a_token_reads_it_once(as_user, approval, ctx):
    """A token is looked up (one statement, no transaction) the first time only."""
    counting = Counting(ctx.sessions.kw["bind"])
    ctx.tokens.clear()
    counting.reset()
    assert as_user["olga"].get("/api/tasks").status_code == 200
    first = list(counting.sql)
    counting.reset()
    assert as_user["olga"].get("/api/tasks").status_code == 200
    assert len(first) == len(counting.sql) + 1
    assert any("user_account" in sql for sql in first)
    assert not any("user_account" in sql for sql in counting.sql)
    assert counting.counts["commits"] == 0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_revoked_token_stops_working_within_the_ttl(as_user, ctx):
    clock = Clock()
    ctx.tokens = TokenCache(ttl=10.0, clock=clock)
    assert as_user["ana"].get("/api/tasks").status_code == 200
    with ctx.unit() as session:
        session.execute(delete(ApiToken))

    clock.now += 9.9  # still remembered by this process
    assert as_user["ana"].get("/api/tasks").status_code == 200
    clock.now += 0.2
    assert as_user["ana"].get("/api/tasks").status_code == 401


def test_unknown_tokens_are_never_remembered(app, ctx):
    client = app.test_client()
    for _ in range(2):
        answer = client.get("/api/tasks", headers={"Authorization": "Bearer ccf_nope"})
        assert answer.status_code == 401
    assert len(ctx.tokens._items) == 0


def test_the_token_cache_is_bounded():
    cache = TokenCache(ttl=10.0, size=2)
    for name in ("a", "b", "c"):
        cache.put(name, name.upper())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, "B", "C")


def test_instances_written_without_flags_are_still_synced(as_user, approval, ctx):
    """Rows that predate the flags (or were seeded) read them as True: every projection is
    looked for, and the flags are put right by the next step."""
    started = as_user["ana"].post("/api/instances", json={"process_key": "approval"}).get_json()
    with ctx.unit() as session:
        session.execute(update(ProcessInstance).values(
            has_timers=True, has_subscriptions=True, has_service_calls=True))

    def flags():
        with ctx.unit() as session:
            row = session.get(ProcessInstance, started["id"])
            return row.has_timers, row.has_subscriptions, row.has_service_calls

    for user, data in (("ana", {"amount": 1}), ("bruno", {"approved": True})):
        path = f"/api/tasks?instance_id={started['id']}"
        task = as_user[user].get(path).get_json()["items"][0]
        done = as_user[user].post(f"/api/tasks/{task['id']}/complete", json={"data": data})
        assert done.status_code == 200, done.get_json()
        if user == "ana":  # synced with the engine; service calls are forgotten at the end
            assert flags() == (False, False, True)
    assert flags() == (False, False, False)
    assert as_user["ana"].get(f"/api/instances/{started['id']}").get_json()["status"] == \
        "completed"


def test_an_agents_inbox_total_counts_each_visible_task_once(as_user, approval):
    """carla is in sales and managers; a task assigned to her and offered to her groups is
    counted once, completed tasks are not counted, other groups' tasks are not counted."""
    ana, carla, olga = as_user["ana"], as_user["carla"], as_user["olga"]
    for i in range(3):
        ana.post("/api/instances", json={"process_key": "approval", "business_key": f"c{i}"})
    first = carla.get("/api/tasks?sort=priority").get_json()["items"][0]
    assert olga.post(f"/api/tasks/{first['id']}/assign", json={"username": "carla"}) \
        .status_code == 200
    second = carla.get("/api/tasks?sort=priority").get_json()["items"][1]
    carla.post(f"/api/tasks/{second['id']}/complete", json={"data": {"amount": 0}})

    inbox = carla.get("/api/tasks?per_page=100").get_json()
    assert inbox["total"] == len(inbox["items"]) == 2
    assert as_user["bruno"].get("/api/tasks").get_json()["total"] == 0
    assert olga.get("/api/tasks").get_json()["total"] == 2


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(pg_schema_url, monkeypatch):
    """No ping on a busy pool; after IDLE_PING_SECONDS in the pool a connection is pinged,
    and one the server dropped meanwhile is replaced instead of failing the request.
    (PostgreSQL only: a SQLite file has no server that could drop a connection.)"""
    database_url = pg_schema_url
    engine = db.make_engine(database_url)
    pings = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or real_ping(c))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == []  # checked out again at once: no round trip spent on it

        admin = db.make_engine(database_url)
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert pings
    finally:
        engine.dispose()


def test_postgresql_plans_searches_with_their_values(pg_schema_url):
    """psycopg prepares what runs often (PostgreSQL may then plan it generically, once);
    statements marked db.PLAN_WITH_VALUES, as the inbox's searches are, never get prepared:
    PostgreSQL plans each run with its values."""
    lookup = select(func.abs(bindparam("x", type_=Integer)))
    search = select(func.sign(bindparam("x", type_=Integer))).execution_options(
        **{db.PLAN_WITH_VALUES: True})
    engine = db.make_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            for x in range(10):
                assert conn.execute(lookup, {"x": -x}).scalar_one() == x
                assert conn.execute(search, {"x": -x}).scalar_one() == -min(x, 1)
            prepared = conn.execute(text("SELECT statement FROM pg_prepared_statements"))
            texts = " ".join(prepared.scalars())
        assert "abs(" in texts and "sign(" not in texts
    finally:
        engine.dispose()


def test_inbox_searches_are_planned_with_their_values():
    scoped = inbox.Shape("sla_risk", ("default",), True, "agent", 2)
    by_instance = inbox.Shape("priority", (), False, "agent", status=True, instance=True)
    for statement in inbox.statements(scoped):
        assert statement.get_execution_options()[db.PLAN_WITH_VALUES] is True
    for statement in inbox.statements(by_instance):
        assert db.PLAN_WITH_VALUES not in statement.get_execution_options()
