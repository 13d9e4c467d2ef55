"""Outbox jobs under suspension, failures and crashes, and messages under concurrency.

Everything runs through the API and the real services, on SQLite and PostgreSQL, with a
local HTTP endpoint for the connector. Interleavings (a suspension while a job runs, a worker
that never comes back) are produced with real threads and a session `after_commit` hook that
acts between the claim of a job and its engine step.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from conftest import DATA, QuietHandler, deploy_files, local_server
from sqlalchemy import event, select
from test_sla_flow import _next_timer, _pyme_case, team  # noqa: F401  (fixture)

from app.domain.states import JobKind, JobStatus
from app.persistence.models import Event, Incident, Job
from app.services import jobs
from workers.connectors import ConnectorError, run_connector
from workers.ticker import Ticker

NOTIFY = (DATA / "bpmn" / "notify.bpmn").read_text()
WAITS = DATA / "bpmn" / "waits.bpmn"

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="{pid}_definitions" targetNamespace="http://clientconnect.example/bpmn">"""


REPLY_STARTS = HEAD.format(pid="reply_starts") + """
  <bpmn:message id="customer_replied" name="customer_replied"/>
  <bpmn:process id="reply_starts" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="sales">
      <bpmn:flowNodeRef>triage</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start">
      <bpmn:messageEventDefinition id="start_def" messageRef="customer_replied"/>
    </bpmn:startEvent>
    <bpmn:userTask id="triage"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="triage"/>
    <bpmn:sequenceFlow id="f2" sourceRef="triage" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""

REPLIER = HEAD.format(pid="replier") + """
  <bpmn:collaboration id="replier_collaboration">
    <bpmn:participant id="replier_participant" processRef="replier"/>
    <bpmn:correlationKey id="case_key" name="case_key">
      <bpmn:correlationPropertyRef>case_id</bpmn:correlationPropertyRef>
    </bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:message id="customer_replied" name="customer_replied"/>
  <bpmn:correlationProperty id="case_id" name="case_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="customer_replied">
      <bpmn:messagePath>case_id</bpmn:messagePath>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:process id="replier" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="sales">
      <bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:intermediateThrowEvent id="reply">
      <bpmn:messageEventDefinition id="reply_def" messageRef="customer_replied">
        <bpmn:extensionElements>
          <spiffworkflow:messagePayload>{"case_id": case_id}</spiffworkflow:messagePayload>
        </bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:intermediateThrowEvent>
    <bpmn:userTask id="review"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="reply"/>
    <bpmn:sequenceFlow id="f2" sourceRef="reply" targetRef="review"/>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


# --- helpers ------------------------------------------------------------------------
@pytest.fixture
def hook():
    """A local web hook: counts calls; `gate` runs (once) while a call is in flight;
    `hold` (an Event) keeps the call open until set."""
    state = {"calls": 0, "gate": None, "hold": None, "entered": threading.Event()}

    class Handler(QuietHandler):
        def do_POST(self):
            state["calls"] += 1
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state["entered"].set()
            gate, state["gate"] = state["gate"], None
            if gate:
                gate()
            if state["hold"] is not None:
                state["hold"].wait(10)
            self.reply(200, b'{"ok": true}')

    with local_server(Handler) as base:
        state["url"] = f"{base}/hook"
        yield state


def _deploy_text(as_user, name: str, source: str) -> None:
    response = as_user["diego"].post(
        "/api/definitions", data={"files": [(io.BytesIO(source.encode()), name)]},
        content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()


def _start(client, process_key: str, **variables) -> int:
    response = client.post("/api/instances", json={"process_key": process_key,
                                                   "variables": variables})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _jobs(ctx, instance_id: int, kind: str | None = None) -> list[Job]:
    query = select(Job).where(Job.instance_id == instance_id).order_by(Job.id)
    if kind:
        query = query.where(Job.kind == kind)
    with ctx.unit() as session:
        return list(session.scalars(query))


def _incidents(ctx, instance_id: int) -> list[Incident]:
    with ctx.unit() as session:
        return list(session.scalars(select(Incident).where(Incident.instance_id == instance_id)
                                    .order_by(Incident.id)))


def _history(client, instance_id: int) -> list[str]:
    return [e["kind"] for e in client.get(f"/api/instances/{instance_id}/history")
            .get_json()["items"]]


def _tick_and_drain(ctx, rounds: int = 3) -> list[str]:
    """What the ticker and the workers would do meanwhile, `rounds` times."""
    outcomes = []
    for _ in range(rounds):
        Ticker(ctx, ctx.dispatcher).tick()
        outcomes += ctx.dispatcher.drain()
    return outcomes


@contextmanager
def right_after_claim(ctx, job_id: int, action):
    """Run `action` once, right after the transaction that claims job `job_id` commits:
    between the claim of `jobs.run` and its engine step."""
    done = []

    def after_commit(session):
        if done:
            return
        with ctx.sessions() as probe:
            job = probe.get(Job, job_id)
            claimed = job is not None and job.status == JobStatus.RUNNING
        if claimed:
            done.append(True)
            action()

    event.listen(ctx.sessions, "after_commit", after_commit)
    try:
        yield done
    finally:
        event.remove(ctx.sessions, "after_commit", after_commit)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- B3: suspension while a job runs ---------------------------------------------------
def test_suspending_during_the_service_call_keeps_its_result_for_the_resume(as_user, ctx,
                                                                             hook):
    _deploy_text(as_user, "notify.bpmn", NOTIFY)
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana, "notify", hook_url=hook["url"], customer="acme")
    hook["gate"] = lambda: olga.post(f"/api/instances/{instance}/suspend")

    assert ctx.dispatcher.drain() == ["suspended"]

    assert olga.get(f"/api/instances/{instance}").get_json()["status"] == "suspended"
    (job,) = _jobs(ctx, instance)
    assert (job.status, job.attempts, job.locked_until) == (JobStatus.PENDING, 0, None)
    assert job.payload["result"] == {"status": 200, "json": {"ok": True}}
    assert _tick_and_drain(ctx) == []  # nothing runs for a suspended instance
    assert hook["calls"] == 1

    assert olga.post(f"/api/instances/{instance}/resume").status_code == 200
    assert ctx.dispatcher.drain() == ["done"]

    assert hook["calls"] == 1  # replayed, not called again
    detail = ana.get(f"/api/instances/{instance}").get_json()
    assert detail["variables"]["hook"] == {"status": 200, "json": {"ok": True}}
    assert [t["name"] for t in detail["tasks"]] == ["review"] and detail["incidents"] == []
    assert _jobs(ctx, instance) == []
    assert _history(ana, instance).count("service_task_completed") == 1


def test_a_timer_claimed_just_before_the_suspension_fires_after_the_resume(as_user, ctx):
    response = deploy_files(as_user, WAITS)
    assert response.status_code == 201, response.get_json()
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana, "waits", case_id="C-7")
    ana.post("/api/messages/customer_replied", json={"correlation": {"case_id": "C-7"}})
    (timer,) = _jobs(ctx, instance, JobKind.TIMER)
    ticker = Ticker(ctx, ctx.dispatcher)

    with time_machine.travel(timer.due_at + timedelta(seconds=1), tick=True):
        suspend = lambda: olga.post(f"/api/instances/{instance}/suspend")  # noqa: E731
        with right_after_claim(ctx, timer.id, suspend) as suspended:
            assert ticker.tick()["timers"] == 0
        assert suspended

        (kept,) = _jobs(ctx, instance, JobKind.TIMER)
        assert (kept.id, kept.status, kept.attempts) == (timer.id, JobStatus.PENDING, 0)
        assert ticker.tick()["timers"] == 0  # the instance is suspended
        assert olga.post(f"/api/instances/{instance}/resume").status_code == 200
        assert ticker.tick()["timers"] == 1

    assert [t["name"] for t in ana.get(f"/api/instances/{instance}").get_json()["tasks"]] == [
        "follow_up"]
    assert _history(ana, instance).count("timer_fired") == 1
    assert _jobs(ctx, instance) == []


def test_cancelling_during_the_service_call_drops_the_job(as_user, ctx, hook):
    _deploy_text(as_user, "notify.bpmn", NOTIFY)
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana, "notify", hook_url=hook["url"], customer="acme")
    hook["gate"] = lambda: olga.post(f"/api/instances/{instance}/cancel")

    assert ctx.dispatcher.drain() == ["skipped"]
    assert ana.get(f"/api/instances/{instance}").get_json()["status"] == "cancelled"
    assert _jobs(ctx, instance) == [] and _incidents(ctx, instance) == []


# --- B4: failures never loop ----------------------------------------------------------
@pytest.mark.parametrize("source,variables,needle", [
    (NOTIFY, {"hook_url": "http://[::1/x", "customer": "acme"}, "parameter 'url'"),
    (NOTIFY.replace("</spiffworkflow:parameters>",
                    '<spiffworkflow:parameter id="headers" type="any" '
                    "value=\"{'X-Customer': customer}\" /></spiffworkflow:parameters>"),
     {"customer": "Café €uro"}, "header 'X-Customer' must be Latin-1"),
], ids=["bad-ipv6-url", "non-latin1-header"])
def test_a_connector_parameter_bug_fails_once_with_an_incident(as_user, ctx, hook, source,
                                                               variables, needle):
    _deploy_text(as_user, "notify.bpmn", source)
    variables.setdefault("hook_url", hook["url"])
    instance = _start(as_user["ana"], "notify", **variables)

    assert ctx.dispatcher.drain() == ["failed"]
    assert _tick_and_drain(ctx) == []  # no loop, no retry

    (job,) = _jobs(ctx, instance)
    assert (job.status, job.attempts, job.locked_until) == (JobStatus.FAILED, 1, None)
    assert needle in job.last_error
    (incident,) = as_user["olga"].get(f"/api/instances/{instance}").get_json()["incidents"]
    assert needle in incident["message"] and incident["element_id"] == "call_hook"
    assert hook["calls"] == 0


def test_unexpected_connector_exceptions_become_non_retryable_errors(ctx):
    mail = {"to": "ana@bank.example", "subject": "Hola", "body": "\ud800"}  # lone surrogate
    with pytest.raises(ConnectorError) as raised:
        run_connector("send_email", mail, ctx.settings)
    assert not raised.value.retryable
    assert "'send_email' failed unexpectedly: UnicodeEncodeError" in str(raised.value)

    with pytest.raises(ConnectorError) as raised:
        run_connector("http_request", {"url": "http://127.0.0.1:9/", "json": {"ids": {1, 2}}},
                      ctx.settings)
    assert not raised.value.retryable and "parameter 'json'" in str(raised.value)


def test_a_failure_after_the_call_is_an_incident_and_the_retry_replays_the_result(as_user, ctx,
                                                                                 hook):
    """The connector succeeded, then advancing the instance failed (here a process listener
    with a bug; an engine or serialization error goes the same way): one incident, the job
    failed with the result kept, and the operator's retry completes the task from that
    result without calling the hook again."""
    _deploy_text(as_user, "notify.bpmn", NOTIFY)
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana, "notify", hook_url=hook["url"], customer="acme")
    broken = {"on": True}

    def projection(session, instance, snap, actor, cause):
        if broken["on"]:
            raise RuntimeError("projection bug")

    ctx.listeners["notify"] = [projection]

    assert ctx.dispatcher.drain() == ["failed"]
    assert _tick_and_drain(ctx) == []  # not running, not retried, not looping

    (job,) = _jobs(ctx, instance)
    assert (job.status, job.attempts, job.locked_until) == (JobStatus.FAILED, 1, None)
    assert job.payload["result"] == {"status": 200, "json": {"ok": True}}
    detail = olga.get(f"/api/instances/{instance}").get_json()
    (incident,) = detail["incidents"]
    assert incident["message"] == ("advancing the instance after its service call succeeded "
                                   "failed: RuntimeError: projection bug")
    assert detail["status"] == "active" and detail["tasks"] == []
    assert "service_task_completed" not in _history(olga, instance)

    broken["on"] = False
    assert olga.post(f"/api/incidents/{incident['id']}/retry").status_code == 200
    assert ctx.dispatcher.drain() == ["done"]

    assert hook["calls"] == 1  # the stored result was replayed
    detail = olga.get(f"/api/instances/{instance}").get_json()
    assert detail["variables"]["hook"] == {"status": 200, "json": {"ok": True}}
    assert [t["name"] for t in detail["tasks"]] == ["review"] and detail["incidents"] == []
    assert _jobs(ctx, instance) == []


def test_a_job_whose_last_attempt_never_finished_is_refused_with_an_incident(as_user, ctx,
                                                                             hook):
    """A worker hangs in the connector past its lease; the ticker hands the job out again;
    its only attempt is spent, so it becomes an incident instead of a second call; the
    late worker's result is then ignored, and the operator's retry calls again."""
    _deploy_text(as_user, "notify.bpmn", NOTIFY.replace(
        "</spiffworkflow:parameters>",
        '</spiffworkflow:parameters><spiffworkflow:retry retries="0" />'))
    ctx.settings = ctx.settings.with_overrides(job_timeout_seconds=1)
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start(ana, "notify", hook_url=hook["url"], customer="acme")
    (job_id,) = ctx.dispatcher.ids
    ctx.dispatcher.ids.clear()
    hook["hold"] = threading.Event()
    late = {}
    worker = threading.Thread(target=lambda: late.update(outcome=jobs.run(ctx, job_id)))
    worker.start()
    try:
        assert hook["entered"].wait(10)
        time.sleep(1.2)  # the lease runs out
        assert Ticker(ctx, ctx.dispatcher).tick()["dispatched"] == 1
        assert ctx.dispatcher.drain() == ["failed"]
    finally:
        hook["hold"].set()
        worker.join(15)
    assert late["outcome"] == "skipped"
    assert hook["calls"] == 1

    (job,) = _jobs(ctx, instance)
    assert (job.status, job.attempts, job.max_attempts) == (JobStatus.FAILED, 1, 1)
    assert "result" not in job.payload
    (incident,) = olga.get(f"/api/instances/{instance}").get_json()["incidents"]
    assert "gave up after 1 attempt(s)" in incident["message"]

    hook["hold"] = None
    assert olga.post(f"/api/incidents/{incident['id']}/retry").status_code == 200
    assert ctx.dispatcher.drain() == ["done"]
    assert hook["calls"] == 2
    assert [t["name"] for t in ana.get(f"/api/instances/{instance}").get_json()["tasks"]] == [
        "review"]


def test_sla_ladder_mails_retry_then_become_an_incident(team, ctx):  # noqa: F811
    pia = team["pia"]
    case = _pyme_case(pia)
    ctx.dispatcher.drain()
    ctx.settings = ctx.settings.with_overrides(smtp_host="127.0.0.1", smtp_port=_closed_port())
    warn_at = _next_timer(ctx)

    with time_machine.travel(warn_at + timedelta(seconds=1), tick=False):
        outcomes = _tick_and_drain(ctx, rounds=6)

    with ctx.unit() as session:
        (notify,) = session.scalars(select(Job).where(Job.kind == JobKind.NOTIFY)).all()
    assert outcomes.count("retry") == 3 and outcomes.count("failed") == 1
    assert (notify.status, notify.attempts, notify.max_attempts) == (JobStatus.FAILED, 4, 4)
    assert "sending mail through 127.0.0.1" in notify.last_error
    (incident,) = [i for i in _incidents(ctx, notify.instance_id) if i.job_id == notify.id]
    assert incident.element_id == "sla_warning" and "sending mail" in incident.message
    assert pia.get(f"/api/cases/{case['case_id']}").get_json()["sla_step"] == "warning"


# --- S8: messages for suspended instances -------------------------------------------
def test_a_message_for_suspended_instances_only_is_a_409(as_user, ctx):
    for path in (WAITS,):
        assert deploy_files(as_user, path).status_code == 201
    _deploy_text(as_user, "reply_starts.bpmn", REPLY_STARTS)
    ana, olga = as_user["ana"], as_user["olga"]
    first, second = _start(ana, "waits", case_id="C-3"), _start(ana, "waits", case_id="C-3")
    olga.post(f"/api/instances/{first}/suspend")
    olga.post(f"/api/instances/{second}/suspend")
    body = {"correlation": {"case_id": "C-3"}, "payload": {"answer": "yes"},
            "idempotency_key": "reply-3"}

    refused = ana.post("/api/messages/customer_replied", json=body)

    assert refused.status_code == 409
    assert refused.get_json()["message"].startswith(
        f"the waiting instance(s) {first}, {second} are suspended")
    assert olga.get("/api/instances?process_key=reply_starts").get_json()["total"] == 0

    olga.post(f"/api/instances/{second}/resume")
    delivered = ana.post("/api/messages/customer_replied", json=body)
    assert delivered.status_code == 202 and delivered.get_json() == {"instances": [second]}
    assert ana.get(f"/api/instances/{second}").get_json()["variables"]["answer"] == "yes"
    assert "message_not_delivered" in _history(ana, first)
    assert "message_received" not in _history(ana, first)
    assert olga.get("/api/instances?process_key=reply_starts").get_json()["total"] == 0


def test_a_thrown_message_for_a_suspended_instance_is_an_incident(as_user, ctx):
    assert deploy_files(as_user, WAITS).status_code == 201
    _deploy_text(as_user, "replier.bpmn", REPLIER)
    ana, olga = as_user["ana"], as_user["olga"]
    waiting = _start(ana, "waits", case_id="C-4")
    olga.post(f"/api/instances/{waiting}/suspend")
    thrower = _start(ana, "replier", case_id="C-4")

    assert ctx.dispatcher.drain() == ["failed"]
    (incident,) = olga.get(f"/api/instances/{thrower}").get_json()["incidents"]
    assert f"the waiting instance(s) {waiting} are suspended" in incident["message"]

    olga.post(f"/api/instances/{waiting}/resume")
    assert olga.post(f"/api/incidents/{incident['id']}/retry").status_code == 200
    assert ctx.dispatcher.drain() == ["done"]
    assert "message_received" in _history(ana, waiting)


# --- S1: the idempotency key under concurrency ----------------------------------------
def _race(app, headers, name: str, body: dict, n: int = 2) -> list[tuple[int, dict]]:
    barrier, answers = threading.Barrier(n), [None] * n

    def send(i):
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/messages/{name}", json=body, headers=headers)
        answers[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_concurrent_sends_with_one_idempotency_key_get_the_same_202(app, as_user, ctx):
    assert deploy_files(as_user, WAITS).status_code == 201
    assert deploy_files(as_user, DATA / "bpmn" / "lead.bpmn").status_code == 201
    ana = as_user["ana"]
    for round_ in range(3):
        instance = _start(ana, "waits", case_id=f"R-{round_}")
        answers = _race(app, ana.headers, "customer_replied", {
            "correlation": {"case_id": f"R-{round_}"}, "idempotency_key": f"reply-{round_}"})
        assert answers == [(202, {"instances": [instance]})] * 2
        assert _history(ana, instance).count("message_received") == 1

        answers = _race(app, ana.headers, "lead_created", {
            "payload": {"lead": "Acme"}, "idempotency_key": f"lead-{round_}"})
        assert answers[0][0] == 202 and answers[0] == answers[1]
    assert as_user["olga"].get("/api/instances?process_key=lead").get_json()["total"] == 3


def test_an_idempotency_key_reused_for_another_message_is_a_409(as_user, ctx):
    assert deploy_files(as_user, DATA / "bpmn" / "lead.bpmn").status_code == 201
    ana = as_user["ana"]
    first = ana.post("/api/messages/lead_created", json={"idempotency_key": "k-1"})
    assert first.status_code == 202
    reused = ana.post("/api/messages/nobody_listens", json={"idempotency_key": "k-1"})
    assert reused.status_code == 409
    assert "already used for message 'lead_created'" in reused.get_json()["message"]
    again = ana.post("/api/messages/lead_created", json={"idempotency_key": "k-1"})
    assert again.get_json() == first.get_json()


# --- S9: several tickers ------------------------------------------------------------
def test_two_tickers_at_once_fire_each_timer_once(as_user, ctx):
    assert deploy_files(as_user, WAITS).status_code == 201
    ana = as_user["ana"]
    instances = [_start(ana, "waits", case_id=f"T-{i}") for i in range(4)]
    for i in range(4):
        ana.post("/api/messages/customer_replied", json={"correlation": {"case_id": f"T-{i}"}})
    with ctx.unit() as session:
        due = max(session.scalars(select(Job.due_at).where(Job.kind == JobKind.TIMER)))
    barrier, fired = threading.Barrier(2), []

    def tick():
        barrier.wait()
        fired.append(Ticker(ctx, ctx.dispatcher).tick()["timers"])

    with time_machine.travel(due + timedelta(seconds=1), tick=True):
        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert sum(fired) == 4
    with ctx.unit() as session:
        fired_events = session.scalars(select(Event.instance_id)
                                       .where(Event.kind == "timer_fired")).all()
    assert sorted(fired_events) == sorted(instances)
