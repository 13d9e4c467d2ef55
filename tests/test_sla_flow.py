"""SLA clocks and the escalation ladder through the API, fired by the real ticker."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from conftest import ApiClient
from sqlalchemy import select
from test_support_flow import _complete, _only_task, _register

from app.persistence.models import Job
from app.services import users
from workers.ticker import Ticker


@pytest.fixture
def team(support, app, ctx):
    client = app.test_client()
    users.create_user(ctx, "marta", "password123", "agent", ["gerentes_cuenta"],
                      "marta@bank.example")
    users.create_user(ctx, "sofia", "password123", "agent", ["estrategia_pyme"])
    extra = {name: ApiClient(client, users.create_token(ctx, name)) for name in ("marta", "sofia")}
    with ctx.unit() as session:
        from app.persistence.models import User
        pia = session.scalar(select(User).where(User.username == "pia"))
        pia.email = "pia@bank.example"
    response = support["olga"].post("/api/customers", json={
        "id": "800555111", "name": "Pyme Andina", "segment": "pyme", "value_rank": 70,
        "sensitivity": "low", "n1_agent": "pia", "account_manager": "marta",
        "email": "pagos@andina.example"})
    assert response.status_code == 201
    return {**support, **extra}


def _pyme_case(client, **overrides):
    return _register(client, customer_id="800555111", **overrides)


def _next_timer(ctx, element_id="watch_wait"):
    with ctx.unit() as session:
        return session.scalar(select(Job.due_at).where(Job.kind == "timer",
                                                       Job.element_id == element_id))


def _tick_at(ctx, when):
    with time_machine.travel(when + timedelta(seconds=1), tick=False):
        fired = Ticker(ctx, ctx.dispatcher).tick()["timers"]
        ctx.dispatcher.drain()
    return fired


def _case(client, case_id):
    return client.get(f"/api/cases/{case_id}").get_json()


def test_the_ladder_warns_breaches_and_goes_critical_once_each(team, ctx):
    pia = team["pia"]
    case = _pyme_case(pia)
    ctx.dispatcher.drain()
    assert _case(pia, case["case_id"])["priority"] == "P4"
    warn_at = _next_timer(ctx)
    assert _tick_at(ctx, warn_at - timedelta(minutes=5)) == 0
    assert _tick_at(ctx, warn_at) == 1
    detail = _case(pia, case["case_id"])
    assert detail["sla_step"] == "warning"
    warning = detail["timeline"][-1]
    assert warning["kind"] == "sla_warning" and warning["detail"]["notified"] == ["pia"]
    assert _tick_at(ctx, warn_at + timedelta(minutes=1)) == 0  # never twice
    mails = [p.read_text() for p in ctx.settings.outbox_dir.glob("*.eml")]
    assert any("pia@bank.example" in m and "75%" in m for m in mails)

    breach_at = _next_timer(ctx)
    assert _tick_at(ctx, breach_at) == 1
    with time_machine.travel(breach_at + timedelta(minutes=1), tick=False):
        detail = _case(pia, case["case_id"])
        (accompany,) = team["marta"].get("/api/tasks").get_json()["items"]
    assert (detail["sla_step"], detail["priority"]) == ("breached", "P3")
    assert detail["sla"]["state"] == "breached"
    assert accompany["name"] == "accompany_case" and accompany["assignee"] == "marta"
    assert accompany["sla"]["state"] == "breached"
    n1 = _only_task(pia, case["instance_id"])
    assert n1["priority"] == 3  # raised with the case

    critical_at = _next_timer(ctx)
    assert _tick_at(ctx, critical_at) == 1
    (prioritize,) = team["sofia"].get("/api/tasks").get_json()["items"]
    assert prioritize["candidate_groups"] == ["estrategia_pyme"]
    kinds = [e["kind"] for e in _case(pia, case["case_id"])["timeline"]]
    assert kinds.count("sla_warning") == kinds.count("sla_breached") == 1
    assert kinds.count("sla_critical") == 1
    assert _next_timer(ctx) is None  # nothing left to fire


def test_waiting_for_the_customer_pauses_the_clock(team, ctx):
    pia = team["pia"]
    case = _pyme_case(pia, typology="Consulta de estado de pago")
    ctx.dispatcher.drain()
    due = _case(pia, case["case_id"])["due_at"]
    _complete(pia, _only_task(pia, case["instance_id"]),
              {"action": "request_info", "question": "Número de la orden"})
    ctx.dispatcher.drain()
    paused = _case(pia, case["case_id"])
    assert paused["sla"]["state"] == "paused" and _next_timer(ctx) is None
    later = _next_timer(ctx, "wait_info")  # no timer: the wait is for the customer
    assert later is None
    with ctx.unit() as session:
        from app.persistence.crm import SupportCase
        start = session.get(SupportCase, case["case_id"]).sla_paused_since
    with time_machine.travel(start + timedelta(days=7), tick=False):
        answered = pia.post("/api/messages/customer_info", json={
            "correlation": {"case_id": case["case_id"]}, "payload": {"info": "Orden 9"}})
        assert answered.status_code == 202
        ctx.dispatcher.drain()
        resumed = _case(pia, case["case_id"])
    assert resumed["sla"]["state"] in ("on_track", "at_risk")
    (pause,) = resumed["sla_pauses"]
    assert pause["reason"] == "waiting_customer"
    assert resumed["due_at"] > due  # the pause moved the due date
    assert _next_timer(ctx) is not None  # the watch is armed again


def test_account_manager_escalates_by_hand(team, ctx):
    pia, marta = team["pia"], team["marta"]
    case = _pyme_case(pia)
    ctx.dispatcher.drain()
    assert pia.post(f"/api/cases/{case['case_id']}/escalate",
                    json={"reason": "Cliente molesto"}).status_code == 403
    escalated = marta.post(f"/api/cases/{case['case_id']}/escalate",
                           json={"reason": "Cliente estratégico molesto"})
    assert escalated.status_code == 200, escalated.get_json()
    entry = escalated.get_json()["timeline"][-1]
    assert (entry["kind"], entry["actor"]) == ("sla_warning", "marta")
    assert entry["reason"] == "Cliente estratégico molesto" and entry["detail"]["manual"]
    marta.post(f"/api/cases/{case['case_id']}/escalate", json={"reason": "otra vez"})
    assert _case(pia, case["case_id"])["sla_step"] == "breached"


def test_agents_inbox_is_ordered_by_sla_risk(team, ctx):
    pia = team["pia"]
    with time_machine.travel("2026-10-19T13:00:00Z", tick=False):
        older = _pyme_case(pia, typology="Consulta de estado de pago", subject="antiguo")
    with time_machine.travel("2026-10-19T20:00:00Z", tick=False):
        newer = _pyme_case(pia, typology="Pago no aplicado", subject="nuevo")
    with time_machine.travel("2026-10-20T15:00:00Z", tick=False):
        items = pia.get("/api/tasks").get_json()["items"]
        fifo = pia.get("/api/tasks?sort=created_at").get_json()["items"]
    shares = [i["sla"]["share"] for i in items]
    assert shares == sorted(shares, reverse=True)
    assert {i["instance_id"] for i in items} == {older["instance_id"], newer["instance_id"]}
    assert [i["instance_id"] for i in fifo][0] == older["instance_id"]


@pytest.fixture
def swift_team(team, app, ctx):
    client = app.test_client()
    users.create_user(ctx, "nico", "password123", "agent", ["tec_swift"])
    return {**team, "nico": ApiClient(client, users.create_token(ctx, "nico"))}


def test_mass_incident_links_cases_and_resolves_them_with_one_action(swift_team, ctx):
    pia, nico, irene = swift_team["pia"], swift_team["nico"], swift_team["irene"]
    cases = [_register(pia, product="Swift", typology="Giro devuelto", subject=f"giro {n}")
             for n in range(5)]
    detail = _case(pia, cases[-1]["case_id"])
    incident_id = detail["links"]["major_incident_id"]
    assert incident_id is not None
    assert all(_case(pia, c["case_id"])["links"]["major_incident_id"] == incident_id
               for c in cases)
    late = _register(pia, product="Swift", typology="Giro devuelto", subject="giro tardío")
    assert _case(pia, late["case_id"])["links"]["major_incident_id"] == incident_id
    other = _register(pia, product="Pagos", typology="Pago rechazado")
    assert _case(pia, other["case_id"])["links"]["major_incident_id"] is None
    ctx.dispatcher.drain()
    mails = [p.read_text() for p in ctx.settings.outbox_dir.glob("*.eml")]
    assert sum("incidente general en Swift" in m for m in mails) == 6

    _complete(pia, _only_task(pia, cases[0]["instance_id"]),
              {"action": "escalate", "reason": "Falla general"})
    assert _only_task(irene, cases[0]["instance_id"])["name"] == "n2_review"
    (task,) = nico.get("/api/tasks?process_key=major_incident").get_json()["items"]
    assert task["candidate_groups"] == ["tec_swift"]
    _complete(nico, task, {"resolution": "Se restableció la conexión SWIFT"})
    ctx.dispatcher.drain()
    for case in [*cases, late]:
        body = _case(pia, case["case_id"])
        assert (body["status"], body["resolved_tier"]) == ("resolved", "N3"), body["id"]
        assert body["became_incident"]
    assert _case(pia, other["case_id"])["status"] == "open"
    assert pia.get(f"/api/tasks?instance_id={cases[0]['instance_id']}").get_json()["total"] == 0


def test_n2_and_n3_olas_are_measured_apart(team, ctx):
    pia, irene, tomas = team["pia"], team["irene"], team["tomas"]
    with time_machine.travel("2026-10-19T14:00:00Z", tick=False):  # Monday 09:00 Bogota
        case = _register(pia, product="Swift", typology="Giro devuelto")
    steps = [("2026-10-19T14:30:00Z", pia, {"action": "escalate", "reason": "Para N2"}),
             ("2026-10-19T16:00:00Z", irene, {"action": "incident", "reason": "Falla SWIFT"}),
             ("2026-10-19T20:00:00Z", tomas, {"diagnosis": "Certificado", "fix": "Renovado"}),
             ("2026-10-19T21:00:00Z", irene, {"confirmed": True, "solution": "Enviado"})]
    for at, client, data in steps:
        with time_machine.travel(at, tick=False):
            _complete(client, _only_task(client, case["instance_id"]), data)
    body = _case(pia, case["case_id"])
    assert body["ola"] == {"N2": {"target": 720, "spent": 150.0},  # 90 + 60 minutes at N2
                           "N3": {"target": 480, "spent": 240.0}}
    with time_machine.travel("2026-10-19T22:00:00Z", tick=False):
        rows = pia.get("/api/sla/report?group_by=tier").get_json()["items"]
    (n3,) = [r for r in rows if r["group"] == "N3"]
    assert (n3["ola_compliance_pct"], n3["ola_mean_business_hours"]) == (100.0, 4.0)
