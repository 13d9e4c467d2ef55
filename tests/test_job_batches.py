"""Outbox jobs in batches: due timers claimed in batches by one or several tickers and fired
in one transaction per batch; service calls run together; what a batch does when one of its
instances fails, is suspended or is held by another transaction; how many commits a batch
costs. On SQLite and PostgreSQL, through the real services.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from conftest import DATA, Recorder, wait_bpmn
from sqlalchemy import event, select

from app.config import Settings
from app.domain.access import SYSTEM
from app.domain.states import IncidentStatus, JobKind, JobStatus, TaskStatus
from app.persistence.db import make_engine
from app.persistence.models import Base, Event, Incident, Job, ProcessInstance, Task
from app.services import deploy, incidents, instances, job_claims, jobs
from app.services.context import build_context
from workers.ticker import Ticker

HOUR_WAIT = wait_bpmn("hour_wait", "PT1H")
SERVICE_CALL = (DATA / "bpmn" / "service_call.bpmn").read_bytes()


# --- helpers ------------------------------------------------------------------------
def _waiting(ctx, n: int) -> list[int]:
    """Start n instances of hour_wait: each waits on its own timer, due in an hour."""
    deploy.deploy(ctx, SYSTEM, {"hour_wait.bpmn": HOUR_WAIT})
    return [instances.start(ctx, SYSTEM, "hour_wait")["id"] for _ in range(n)]


def _after_due(ctx, seconds: float = 1.0, tick: bool = True):
    with ctx.unit() as session:
        due = max(session.scalars(select(Job.due_at).where(Job.kind == JobKind.TIMER)))
    return time_machine.travel(due + timedelta(seconds=seconds), tick=tick)


def _jobs(ctx) -> list[Job]:
    with ctx.unit() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def _events(ctx, kind: str) -> Counter:
    with ctx.unit() as session:
        return Counter(session.scalars(select(Event.instance_id).where(Event.kind == kind)))


def _open(ctx, name: str) -> Counter:
    with ctx.unit() as session:
        return Counter(session.scalars(select(Task.instance_id).where(
            Task.name == name, Task.status == TaskStatus.OPEN)))


class Commits:
    def __init__(self, ctx):
        self.count = 0
        event.listen(ctx.sessions.kw["bind"], "commit", self._commit)

    def _commit(self, *_args) -> None:
        self.count += 1


@pytest.fixture
def second(settings):
    """Another ticker process: its own engine, pool and caches on the same database."""
    other = build_context(settings, Recorder())
    yield other
    other.sessions.kw["bind"].dispose()


# --- timers ---------------------------------------------------------------------------
def test_a_batch_of_timers_is_one_claim_and_one_commit(ctx):
    ids = _waiting(ctx, 12)
    with _after_due(ctx):
        commits = Commits(ctx)
        assert jobs.fire_due_timers(ctx, 5) == ["done"] * 5
        assert commits.count == 2  # the claim, then the engine steps of all five
        assert len(_jobs(ctx)) == 7  # a claim never takes more than its batch
        assert jobs.fire_due_timers(ctx, 20) == ["done"] * 7

    assert _events(ctx, "timer_fired") == Counter(ids)  # each timer fired once
    assert _open(ctx, "after") == Counter(ids)
    assert _jobs(ctx) == []


def test_two_tickers_split_the_due_timers_instead_of_racing(ctx, second):
    ids = _waiting(ctx, 40)
    outcomes = {0: [], 1: []}

    def ticker(n, context):
        while True:
            batch = jobs.fire_due_timers(context, 4)
            outcomes[n].extend(batch)
            if len(batch) < 4:
                return

    with _after_due(ctx):
        threads = [threading.Thread(target=ticker, args=(n, c))
                   for n, c in enumerate((ctx, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    # no ticker ever got a timer the other one holds ("skipped"): each claims its own
    assert Counter(outcomes[0] + outcomes[1]) == {"done": 40}
    assert _events(ctx, "timer_fired") == Counter(ids)
    assert _open(ctx, "after") == Counter(ids)


def test_one_failing_instance_does_not_hold_back_its_batch(ctx):
    ids = _waiting(ctx, 4)
    bad = ids[1]

    def projection(session, instance, snap, actor, cause):
        if instance.id == bad:
            raise RuntimeError("projection bug")

    ctx.listeners["hour_wait"] = [projection]
    with _after_due(ctx):
        assert sorted(jobs.fire_due_timers(ctx, 10)) == ["done", "done", "done", "failed"]

    assert _open(ctx, "after") == Counter(i for i in ids if i != bad)
    (job,) = _jobs(ctx)
    assert (job.instance_id, job.status, job.attempts) == (bad, JobStatus.FAILED, 1)
    with ctx.unit() as session:
        (incident,) = session.scalars(select(Incident))
    assert incident.status == IncidentStatus.OPEN and incident.job_id == job.id
    assert incident.message == "advancing the instance failed: RuntimeError: projection bug"


def test_an_instance_suspended_after_the_claim_keeps_its_timer(ctx):
    ids = _waiting(ctx, 3)
    victim = ids[0]
    suspended = []

    def after_commit(_session):  # right after the claim: suspend one instance of the batch
        if suspended:
            return
        with ctx.sessions() as probe:
            claimed = probe.scalars(select(Job.id).where(Job.status == JobStatus.RUNNING)).all()
        if claimed:
            suspended.append(True)  # before suspending: its own commit comes back here
            instances.suspend(ctx, SYSTEM, victim)

    event.listen(ctx.sessions, "after_commit", after_commit)
    try:
        with _after_due(ctx):
            outcomes = jobs.fire_due_timers(ctx, 10)
    finally:
        event.remove(ctx.sessions, "after_commit", after_commit)

    assert suspended and sorted(outcomes) == ["done", "done", "suspended"]
    (kept,) = _jobs(ctx)
    assert (kept.instance_id, kept.status, kept.attempts) == (victim, JobStatus.PENDING, 0)
    with _after_due(ctx):
        assert jobs.fire_due_timers(ctx, 10) == []  # a suspended instance fires no timers
        instances.resume(ctx, SYSTEM, victim)
        assert jobs.fire_due_timers(ctx, 10) == ["done"]
    assert _events(ctx, "timer_fired") == Counter(ids)


def test_timers_leased_to_workers_are_due_again_when_the_lease_runs_out(ctx):
    """A batch handed to the workers and lost on the way (Redis gone) is not lost."""
    ids = _waiting(ctx, 3)
    timers = sorted(job.id for job in _jobs(ctx))
    with _after_due(ctx, tick=False):
        assert sorted(job_claims.lease_due_timers(ctx, 10)) == timers
        assert jobs.fire_due_timers(ctx, 10) == []  # leased: not this ticker's
    with _after_due(ctx, 2 + job_claims.TIMER_LEASE_SECONDS, tick=False):
        assert jobs.fire_due_timers(ctx, 10) == ["done"] * 3
    assert _events(ctx, "timer_fired") == Counter(ids)


def test_a_ticker_pass_stops_on_its_budget_and_the_next_goes_on(ctx):
    _waiting(ctx, 5)
    ticker = Ticker(ctx, ctx.dispatcher, batch=2, budget=0.0)
    with _after_due(ctx):
        assert ticker.tick() == {"timers": 2, "dispatched": 0}
        assert ticker.behind
        assert ticker.tick() == {"timers": 2, "dispatched": 0}
        assert ticker.tick() == {"timers": 1, "dispatched": 0}
        assert not ticker.behind


def test_an_instance_held_by_another_transaction_fires_once_it_is_free(pg_ctx):
    """The batch goes on without the instance a user's transaction holds, then waits for it
    on its own: it is neither skipped nor fired twice."""
    ids = _waiting(pg_ctx, 3)
    held = ids[1]
    with _after_due(pg_ctx):
        holder = pg_ctx.sessions()
        holder.execute(select(ProcessInstance).where(ProcessInstance.id == held)
                       .with_for_update())
        release = threading.Timer(0.5, holder.rollback)
        release.start()
        began = time.monotonic()
        try:
            assert jobs.fire_due_timers(pg_ctx, 10) == ["done"] * 3
        finally:
            release.join()
            holder.close()
        assert time.monotonic() - began >= 0.4

    with pg_ctx.unit() as session:
        fired = list(session.scalars(select(Event.instance_id).where(
            Event.kind == "timer_fired").order_by(Event.id)))
    assert fired[-1] == held and sorted(fired) == sorted(ids)


@pytest.fixture
def pg_ctx(pg_schema_url, tmp_path):
    settings = Settings(database_url=pg_schema_url, instance_dir=tmp_path / "instance",
                        job_backoff_seconds=0.0, password_profile="CHEAPEST")
    engine = make_engine(pg_schema_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    context = build_context(settings, Recorder())
    context.dispatcher.ctx = context
    yield context
    context.sessions.kw["bind"].dispose()


# --- service calls --------------------------------------------------------------------
def _calls(ctx, base: str, paths: list[str]) -> list[int]:
    deploy.deploy(ctx, SYSTEM, {"service_call.bpmn": SERVICE_CALL})
    for path in paths:
        instances.start(ctx, SYSTEM, "service_call", variables={"url": f"{base}{path}"})
    ids, ctx.dispatcher.ids[:] = list(ctx.dispatcher.ids), []
    return ids


def test_a_batch_of_service_calls_is_three_commits(ctx, counting_hook):
    base, hits = counting_hook
    ids = _calls(ctx, base, [f"/ok/{n}" for n in range(6)])
    commits = Commits(ctx)

    assert jobs.run_many(ctx, ids) == ["done"] * 6

    assert commits.count == 3  # the claim, the connector results, the engine steps
    assert hits == {f"/ok/{n}": 1 for n in range(6)}
    assert len(_open(ctx, "review")) == 6 and _jobs(ctx) == []
    assert sum(_events(ctx, "service_task_completed").values()) == 6


def test_a_batch_keeps_each_jobs_own_outcome(ctx, counting_hook):
    """A failing call is retried, a suspended instance's call waits for the resume, an
    unknown id is skipped; the other calls of the batch complete."""
    base, hits = counting_hook
    ids = _calls(ctx, base, ["/ok/1", "/fail", "/ok/2", "/ok/3"])
    with ctx.unit() as session:
        waiting = session.get(Job, ids[3]).instance_id
    instances.suspend(ctx, SYSTEM, waiting)

    assert jobs.run_many(ctx, [*ids, 999_999]) == ["done", "retry", "done", "skipped",
                                                   "skipped"]

    assert hits == {"/ok/1": 1, "/fail": 1, "/ok/2": 1}
    rows = {job.id: job for job in _jobs(ctx)}
    assert (rows[ids[1]].status, rows[ids[1]].attempts) == (JobStatus.PENDING, 1)
    assert (rows[ids[3]].status, rows[ids[3]].attempts) == (JobStatus.PENDING, 0)
    instances.resume(ctx, SYSTEM, waiting)
    assert ctx.dispatcher.drain() == ["done"]
    assert hits["/ok/3"] == 1 and len(_open(ctx, "review")) == 3


def test_results_of_a_batch_are_kept_when_its_engine_step_fails(ctx, counting_hook):
    """Advancing fails for the whole batch (a projection bug): each job is then advanced on
    its own, fails with its result stored, and the operator's retry replays that result."""
    base, hits = counting_hook
    ids = _calls(ctx, base, ["/ok/1", "/ok/2"])
    broken = {"on": True}

    def projection(session, instance, snap, actor, cause):
        if broken["on"]:
            raise RuntimeError("projection bug")

    ctx.listeners["service_call"] = [projection]
    assert jobs.run_many(ctx, ids) == ["failed", "failed"]
    assert all(job.payload["result"] == {"status": 200, "json": {"ok": True}}
               for job in _jobs(ctx))

    broken["on"] = False
    with ctx.unit() as session:
        open_ids = list(session.scalars(select(Incident.id)))
    for incident_id in open_ids:
        incidents.retry(ctx, SYSTEM, incident_id)
    assert ctx.dispatcher.drain() == ["done", "done"]
    assert hits == {"/ok/1": 1, "/ok/2": 1}  # replayed, not called again
    assert len(_open(ctx, "review")) == 2
