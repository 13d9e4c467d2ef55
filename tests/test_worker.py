"""Service calls through the outbox, real Redis/RQ and a real PostgreSQL schema.

The RQ worker runs in this process (SimpleWorker) and builds its own context from the
environment (workers/tasks.py), so it shares only the database and Redis with the test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REDIS_URL, QuietHandler, local_server, wait_bpmn
from rq import Queue, SimpleWorker
from rq.job import Job as RQJob
from sqlalchemy import select

from app.config import Settings
from app.domain.access import SYSTEM
from app.domain.states import IncidentStatus, JobStatus, TaskStatus
from app.persistence import migrate
from app.persistence.models import Event, Incident, Job, Task, utcnow
from app.services import deploy, instances
from app.services.context import build_context
from workers import tasks
from workers.queue import RQDispatcher, rq_job_id
from workers.ticker import Ticker

BPMN = Path(__file__).parent / "data" / "bpmn" / "service_call.bpmn"

TIMER_BPMN = wait_bpmn("short_wait", "PT1S")


# --- a local HTTP endpoint ----------------------------------------------------
@pytest.fixture
def endpoint():
    """A local HTTP endpoint: /ok answers an account, anything else 500; `hits` lists the
    paths called."""
    found = SimpleNamespace(hits=[])

    class Handler(QuietHandler):
        def do_GET(self):
            found.hits.append(self.path)
            status, body = (200, {"account": "ACME", "tier": "gold"}) if self.path == "/ok" \
                else (500, {"error": "down"})
            self.reply(status, json.dumps(body).encode())

    with local_server(Handler) as base:
        found.base = base
        yield found


def url_of(server, path: str) -> str:
    return server.base + path


# --- database, Redis, the worker's environment ----------------------------------
@pytest.fixture
def database_url(pg_schema_url):
    migrate.upgrade(pg_schema_url)
    return pg_schema_url


@pytest.fixture
def worker_env(database_url, redis, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CLIENTCONNECT_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("CLIENTCONNECT_JOB_BACKOFF", "0.05")
    tasks.reset_context()
    yield
    tasks.reset_context()


@pytest.fixture
def make_ctx(worker_env):
    built = []

    def make(**overrides):
        settings = Settings.from_env().with_overrides(**overrides)
        ctx = build_context(settings, RQDispatcher(settings.redis_url, settings.queue_name))
        built.append(ctx)
        deploy.deploy(ctx, SYSTEM, {"service_call.bpmn": BPMN.read_bytes()})
        return ctx

    yield make
    for ctx in built:
        ctx.sessions.kw["bind"].dispose()


@pytest.fixture
def ctx(make_ctx):
    return make_ctx(job_retries=2, job_backoff_seconds=0.05)


def work(ctx, redis) -> Queue:
    """Run every queued job in this process, then check RQ saw no crash."""
    queue = Queue(ctx.settings.queue_name, connection=redis)
    SimpleWorker([queue], connection=redis).work(burst=True)
    assert queue.failed_job_registry.count == 0
    return queue


def start(ctx, server, path: str) -> int:
    variables = {"url": url_of(server, path)}
    return instances.start(ctx, SYSTEM, "service_call", variables=variables)["id"]


def rows(ctx, model, instance_id: int) -> list:
    with ctx.unit() as session:
        return list(session.scalars(select(model).where(model.instance_id == instance_id)))


def open_task_names(ctx, instance_id: int) -> list[str]:
    return [t.name for t in rows(ctx, Task, instance_id) if t.status == TaskStatus.OPEN]


# --- tests ----------------------------------------------------------------------
def test_worker_runs_the_service_call_and_advances_the_instance(ctx, redis, endpoint):
    instance_id = start(ctx, endpoint, "/ok")
    [job] = rows(ctx, Job, instance_id)
    assert job.status == JobStatus.PENDING and open_task_names(ctx, instance_id) == []
    assert Queue(ctx.settings.queue_name, connection=redis).count == 1

    work(ctx, redis)

    assert endpoint.hits == ["/ok"]
    assert open_task_names(ctx, instance_id) == ["review"]
    variables = instances.get(ctx, SYSTEM, instance_id)["variables"]
    assert variables["response"] == {"status": 200, "json": {"account": "ACME", "tier": "gold"}}
    assert rows(ctx, Job, instance_id) == []
    assert "service_task_completed" in [e.kind for e in rows(ctx, Event, instance_id)]


def test_failing_endpoint_ends_in_an_incident_after_the_retries(ctx, redis, endpoint):
    instance_id = start(ctx, endpoint, "/fail")
    ticker = Ticker(ctx, ctx.dispatcher, interval=0.05)

    work(ctx, redis)
    for _ in range(40):
        [job] = rows(ctx, Job, instance_id)
        if job.status == JobStatus.FAILED:
            break
        time.sleep(0.06)
        ticker.tick()
        work(ctx, redis)

    [job] = rows(ctx, Job, instance_id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == job.max_attempts == 3
    assert "HTTP 500" in job.last_error
    assert len(endpoint.hits) == 3
    [incident] = rows(ctx, Incident, instance_id)
    assert incident.status == IncidentStatus.OPEN and incident.job_id == job.id
    assert incident.element_id == "fetch"
    assert open_task_names(ctx, instance_id) == []


def test_running_the_same_job_twice_is_harmless(ctx, redis, endpoint):
    instance_id = start(ctx, endpoint, "/ok")
    [job] = rows(ctx, Job, instance_id)
    ctx.dispatcher.dispatch([job.id])  # the same job id queued a second time

    work(ctx, redis)

    assert endpoint.hits == ["/ok"]
    assert open_task_names(ctx, instance_id) == ["review"]
    assert tasks.run_job(job.id) == "skipped"
    assert endpoint.hits == ["/ok"]
    assert open_task_names(ctx, instance_id) == ["review"]


def test_a_job_row_is_queued_once_under_its_own_id_with_the_lease_as_timeout(ctx, redis,
                                                                            endpoint):
    instance_id = start(ctx, endpoint, "/ok")
    [job] = rows(ctx, Job, instance_id)
    queue = Queue(ctx.settings.queue_name, connection=redis)
    assert queue.job_ids == [rq_job_id(job.id)]
    assert queue.fetch_job(rq_job_id(job.id)).timeout == ctx.settings.job_timeout_seconds

    ctx.dispatcher.dispatch([job.id, job.id])  # a resume, a ticker pass...
    assert queue.job_ids == [rq_job_id(job.id)]

    work(ctx, redis)
    assert endpoint.hits == ["/ok"] and open_task_names(ctx, instance_id) == ["review"]
    ctx.dispatcher.dispatch([job.id])  # a finished RQ job leaves nothing behind
    assert queue.job_ids == [rq_job_id(job.id)]
    work(ctx, redis)
    assert endpoint.hits == ["/ok"]  # the row is gone: the second run skips it


def test_a_failed_rq_job_is_replaced_when_its_row_is_dispatched_again(ctx, redis, endpoint):
    """RQ keeps a failed job (e.g. stopped at its timeout) for an hour under the row's RQ id;
    dispatching the row again (the ticker, after the lease) must still enqueue it."""
    instance_id = start(ctx, endpoint, "/ok")
    [job] = rows(ctx, Job, instance_id)
    queue = Queue(ctx.settings.queue_name, connection=redis)
    RQJob.fetch(rq_job_id(job.id), connection=redis).delete()
    queue.enqueue("builtins.int", "not a number", job_id=rq_job_id(job.id), failure_ttl=3600)
    SimpleWorker([queue], connection=redis).work(burst=True)
    assert queue.failed_job_registry.get_job_ids() == [rq_job_id(job.id)]

    ctx.dispatcher.dispatch([job.id])

    assert queue.failed_job_registry.count == 0
    assert queue.job_ids == [rq_job_id(job.id)]
    work(ctx, redis)
    assert endpoint.hits == ["/ok"] and open_task_names(ctx, instance_id) == ["review"]


def test_losing_redis_loses_nothing(make_ctx, redis, endpoint):
    ctx = make_ctx(job_timeout_seconds=3)
    ticker = Ticker(ctx, ctx.dispatcher, interval=0.05)
    instance_id = start(ctx, endpoint, "/ok")
    redis.flushdb()  # the dispatch is gone; the job row is committed
    [job] = rows(ctx, Job, instance_id)

    assert ticker.tick() == {"timers": 0, "dispatched": 0}  # its lease still runs
    work(ctx, redis)
    assert endpoint.hits == [] and open_task_names(ctx, instance_id) == []

    time.sleep(max(0.0, (job.locked_until - utcnow()).total_seconds()) + 0.2)
    assert ticker.tick() == {"timers": 0, "dispatched": 1}
    assert ticker.tick() == {"timers": 0, "dispatched": 0}  # re-leased: not sent twice
    work(ctx, redis)

    assert endpoint.hits == ["/ok"]
    assert open_task_names(ctx, instance_id) == ["review"]


def test_ticker_fires_due_timers(ctx, redis):
    deploy.deploy(ctx, SYSTEM, {"short_wait.bpmn": TIMER_BPMN})
    instance_id = instances.start(ctx, SYSTEM, "short_wait")["id"]
    ticker = Ticker(ctx, ctx.dispatcher, interval=0.05)
    assert ticker.tick() == {"timers": 0, "dispatched": 0}

    time.sleep(1.1)
    assert ticker.tick() == {"timers": 1, "dispatched": 0}

    assert open_task_names(ctx, instance_id) == ["after"]
    assert rows(ctx, Job, instance_id) == []


def test_ticker_thread_survives_errors_and_stops(tmp_path, caplog):
    """Every pass fails (the database has no tables); the loop logs and goes on."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    broken = build_context(settings)
    ticker = Ticker(broken, broken.dispatcher, interval=0.01)

    thread = ticker.start_thread()
    deadline = time.monotonic() + 5
    while caplog.text.count("ticker pass failed") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.stop()
    broken.sessions.kw["bind"].dispose()

    assert caplog.text.count("ticker pass failed") >= 3
    assert "no such table" in caplog.text
    assert not thread.is_alive()


def test_worker_context_is_built_once_from_the_environment(worker_env, database_url):
    first = tasks.worker_context()

    assert tasks.worker_context() is first
    assert first.settings.database_url == database_url
    assert isinstance(first.dispatcher, RQDispatcher)
    assert first.dispatcher.job_timeout == first.settings.job_timeout_seconds
