"""Messages with correlation keys, message start events, idempotency, timers via the ticker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from conftest import DATA, deploy_files
from sqlalchemy import select

from app.persistence.models import Job, MessageSubscription
from workers.ticker import Ticker


def _deploy(as_user, name):
    response = deploy_files(as_user, DATA / "bpmn" / f"{name}.bpmn")
    assert response.status_code == 201, response.get_json()


def _start_waits(ana, case_id):
    response = ana.post("/api/instances", json={"process_key": "waits",
                                               "variables": {"case_id": case_id}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_message_reaches_only_the_correlated_instance(as_user, ctx):
    _deploy(as_user, "waits")
    ana = as_user["ana"]
    first, second = _start_waits(ana, "C-1"), _start_waits(ana, "C-2")
    with ctx.unit() as session:
        keys = session.scalars(select(MessageSubscription.correlation_key)
                               .order_by(MessageSubscription.instance_id)).all()
    assert keys == ['{"case_id":"C-1"}', '{"case_id":"C-2"}']
    sent = ana.post("/api/messages/customer_replied",
                    json={"correlation": {"case_id": "C-2"}, "payload": {"answer": "yes"}})
    assert sent.status_code == 202 and sent.get_json() == {"instances": [second]}
    detail = ana.get(f"/api/instances/{second}").get_json()
    assert detail["variables"]["answer"] == "yes"
    assert ana.get(f"/api/instances/{first}").get_json()["variables"].get("answer") is None
    again = ana.post("/api/messages/customer_replied", json={"correlation": {"case_id": "C-2"}})
    assert again.status_code == 404
    assert again.get_json()["code"] == 404


def test_repeated_idempotency_key_changes_nothing(as_user, ctx):
    _deploy(as_user, "waits")
    ana = as_user["ana"]
    instance = _start_waits(ana, "C-9")
    body = {"correlation": {"case_id": "C-9"}, "idempotency_key": "mail-77"}
    first = ana.post("/api/messages/customer_replied", json=body)
    second = ana.post("/api/messages/customer_replied", json=body)
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json() == {"instances": [instance]}
    history = ana.get(f"/api/instances/{instance}/history").get_json()["items"]
    assert [e["kind"] for e in history].count("message_received") == 1


def test_message_start_event_starts_the_listening_process(as_user):
    _deploy(as_user, "lead")
    ana = as_user["ana"]
    started = ana.post("/api/messages/lead_created", json={"payload": {"lead": "Acme"}})
    assert started.status_code == 202
    (instance_id,) = started.get_json()["instances"]
    detail = ana.get(f"/api/instances/{instance_id}").get_json()
    assert detail["variables"]["lead"] == "Acme"
    assert [t["name"] for t in detail["tasks"]] == ["call_lead"]
    assert ana.post("/api/messages/nobody_listens", json={}).status_code == 404


def test_timer_fires_through_the_ticker_when_due_and_not_before(as_user, ctx):
    _deploy(as_user, "waits")
    ana, olga = as_user["ana"], as_user["olga"]
    instance = _start_waits(ana, "C-5")
    ana.post("/api/messages/customer_replied", json={"correlation": {"case_id": "C-5"}})
    with ctx.unit() as session:
        (job,) = session.scalars(select(Job).where(Job.kind == "timer")).all()
    expected = datetime.now(UTC) + timedelta(hours=2)
    assert abs((job.due_at - expected).total_seconds()) < 60
    ticker = Ticker(ctx, ctx.dispatcher)
    assert ticker.tick()["timers"] == 0
    olga.post(f"/api/instances/{instance}/suspend")
    with time_machine.travel(job.due_at + timedelta(seconds=1), tick=True):
        assert ticker.tick()["timers"] == 0
        olga.post(f"/api/instances/{instance}/resume")
        assert ticker.tick()["timers"] == 1
        assert ticker.tick()["timers"] == 0
    tasks = ana.get(f"/api/instances/{instance}").get_json()["tasks"]
    assert [t["name"] for t in tasks] == ["follow_up"]
    with ctx.unit() as session:
        assert session.scalars(select(Job)).all() == []
