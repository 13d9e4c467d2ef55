"""RQ workers running outbox rows in batches, on a real Redis and PostgreSQL: a worker takes
queued rows off the queue and runs them with its own job; the ticker hands due timers to idle
workers. The worker is SimpleWorker in burst mode, in this process, with its own context
built from the environment (workers/tasks.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from conftest import DATA, REDIS_URL, wait_bpmn
from rq import Queue, SimpleWorker
from rq.job import Job as RQJob
from sqlalchemy import select

from app.config import Settings
from app.domain.access import SYSTEM
from app.domain.states import JobKind, TaskStatus
from app.persistence import migrate
from app.persistence.models import Event, Job, Task
from app.services import deploy, instances
from app.services.context import build_context
from workers import tasks
from workers.queue import BATCH_FUNCTION, RQDispatcher, rq_job_id
from workers.ticker import Ticker

SERVICE_CALL = (DATA / "bpmn" / "service_call.bpmn").read_bytes()


@pytest.fixture
def ctx(pg_schema_url, redis, monkeypatch, tmp_path):
    """The web side's context (it dispatches to RQ); the worker builds its own from the env."""
    migrate.upgrade(pg_schema_url)
    monkeypatch.setenv("DATABASE_URL", pg_schema_url)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CLIENTCONNECT_INSTANCE_DIR", str(tmp_path))
    tasks.reset_context()
    settings = Settings.from_env()
    context = build_context(settings, RQDispatcher(settings.redis_url, settings.queue_name))
    deploy.deploy(context, SYSTEM, {"service_call.bpmn": SERVICE_CALL,
                                    "hour_wait.bpmn": wait_bpmn("hour_wait", "PT1H")})
    yield context
    context.sessions.kw["bind"].dispose()
    tasks.reset_context()


def queue_of(ctx, redis) -> Queue:
    return Queue(ctx.settings.queue_name, connection=redis)


def work(ctx, redis) -> SimpleWorker:
    worker = SimpleWorker([queue_of(ctx, redis)], connection=redis)
    worker.work(burst=True)
    assert queue_of(ctx, redis).failed_job_registry.count == 0
    return worker


def open_tasks(ctx, name: str) -> Counter:
    with ctx.unit() as session:
        return Counter(session.scalars(select(Task.instance_id).where(
            Task.name == name, Task.status == TaskStatus.OPEN)))


def test_a_worker_runs_the_queued_rows_in_a_few_batches(ctx, redis, counting_hook):
    base, hits = counting_hook
    started = [instances.start(ctx, SYSTEM, "service_call",
                               variables={"url": f"{base}/ok/{n}"})["id"] for n in range(20)]
    assert queue_of(ctx, redis).count == 20

    worker = work(ctx, redis)

    assert worker.successful_job_count <= 5  # 20 rows, not 20 RQ jobs
    assert hits == {f"/ok/{n}": 1 for n in range(20)}
    assert open_tasks(ctx, "review") == Counter(started)
    assert queue_of(ctx, redis).count == 0
    assert redis.keys("rq:job:ccf-*") == []  # nothing left behind for the taken rows
    with ctx.unit() as session:
        assert list(session.scalars(select(Job))) == []


def test_take_leaves_other_jobs_alone_and_a_taken_row_can_be_queued_again(redis):
    dispatcher = RQDispatcher(REDIS_URL, "take-test")
    queue = dispatcher.queue
    queue.enqueue("builtins.len", [1], job_id="someone-else")
    dispatcher.dispatch([1, 2, 3, 4, 5, 6])

    assert dispatcher.take(10) == [1, 2, 3, 4]  # at most half of the 7 queued

    assert queue.job_ids == ["someone-else", rq_job_id(5), rq_job_id(6)]
    assert not RQJob.exists(rq_job_id(1), connection=redis)
    dispatcher.dispatch([1])  # unique=True does not refuse it: its RQ job is gone
    assert queue.job_ids[-1] == rq_job_id(1)
    assert dispatcher.take(0) == []


def test_the_ticker_hands_due_timers_to_idle_workers(ctx, redis):
    started = [instances.start(ctx, SYSTEM, "hour_wait")["id"] for _ in range(30)]
    with ctx.unit() as session:
        due = max(session.scalars(select(Job.due_at).where(Job.kind == JobKind.TIMER)))
    listening = SimpleWorker([queue_of(ctx, redis)], connection=redis)
    listening.register_birth()  # one idle worker listens on the queue
    ticker = Ticker(ctx, ctx.dispatcher, batch=5)

    with time_machine.travel(due + timedelta(seconds=1), tick=True):
        try:
            assert ctx.dispatcher.timer_batches_wanted() == 2
            assert ticker.tick() == {"timers": 20, "dispatched": 0}
        finally:
            listening.register_death()
        queued = [queue_of(ctx, redis).fetch_job(i) for i in queue_of(ctx, redis).job_ids]
        assert [(job.func_name, len(job.args[0])) for job in queued] == [
            (BATCH_FUNCTION, 5), (BATCH_FUNCTION, 5)]
        assert ticker.tick() == {"timers": 0, "dispatched": 0}  # leased: not fired twice
        work(ctx, redis)

    assert open_tasks(ctx, "after") == Counter(started)
    with ctx.unit() as session:
        fired = Counter(session.scalars(select(Event.instance_id).where(
            Event.kind == "timer_fired")))
    assert fired == Counter(started)  # each timer fired once, by the ticker or a worker


def test_no_worker_listening_means_no_timers_are_handed_out(ctx, redis):
    instances.start(ctx, SYSTEM, "hour_wait")
    assert ctx.dispatcher.timer_batches_wanted() == 0
