"""The support_case process end to end through the API, with real users of each group."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.persistence.crm import SupportCase
from app.persistence.models import Job
from workers.ticker import Ticker


def _register(client, **overrides):
    body = {"customer_id": "900123456-7", "product": "Pagos", "typology": "Pago rechazado",
            "channel": "email", "subject": "Pago a proveedor rechazado",
            "description": "El pago 123 fue rechazado sin causal", "impact": "one_user",
            **overrides}
    response = client.post("/api/cases", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _only_task(client, instance_id):
    tasks = client.get(f"/api/tasks?instance_id={instance_id}").get_json()["items"]
    assert len(tasks) == 1, tasks
    return tasks[0]


def _complete(client, task, data, status=200):
    response = client.post(f"/api/tasks/{task['id']}/complete", json={"data": data})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _case(client, case_id):
    return client.get(f"/api/cases/{case_id}").get_json()


def test_first_contact_resolution(support, ctx):
    pia = support["pia"]
    case = _register(pia, typology="Consulta de estado de pago")
    assert case["priority"] == "P1" and case["due_at"]
    task = _only_task(pia, case["instance_id"])
    assert task["assignee"] == "pia" and task["candidate_groups"] == ["posventa"]
    assert task["instructions"]  # the N1 solution guide of the typology
    assert task["form"]["schema"]["properties"]["action"]["enum"] == [
        "resolve", "escalate", "request_info"]
    _complete(pia, task, {"action": "resolve"}, status=422)
    _complete(pia, task, {"action": "resolve", "solution": "Se informó el estado del pago"})
    detail = _case(pia, case["case_id"])
    assert (detail["status"], detail["resolved_tier"], detail["tier"]) == ("resolved", "N1", "N1")
    assert [e["kind"] for e in detail["timeline"]] == ["registered", "resolved"]
    assert detail["timeline"][1]["actor"] == "pia"
    assert set(ctx.dispatcher.drain()) == {"done"}
    mails = sorted(p.read_text() for p in ctx.settings.outbox_dir.glob("*.eml"))
    assert len(mails) == 2  # registration and resolution
    assert any("registrado" in m for m in mails) and any("resuelto" in m for m in mails)


def test_n1_cannot_resolve_what_it_may_not(support):
    pia = support["pia"]
    case = _register(pia)  # "Pago rechazado" is not N1-resolvable
    task = _only_task(pia, case["instance_id"])
    assert "resolve" not in task["form"]["schema"]["properties"]["action"]["enum"]
    error = _complete(pia, task, {"action": "resolve", "solution": "hecho"}, status=422)
    assert error["errors"][0]["field"] == "data.action"


def test_escalation_to_n2_and_misroute_return_keeps_the_clock(support):
    pia, oscar, irene = support["pia"], support["oscar"], support["irene"]
    case = _register(pia)
    due = case["due_at"]
    _complete(pia, _only_task(pia, case["instance_id"]),
              {"action": "escalate", "reason": "Requiere revisión de operaciones"})
    assert pia.get(f"/api/tasks?instance_id={case['instance_id']}").get_json()["total"] == 0
    task = _only_task(oscar, case["instance_id"])
    assert task["candidate_groups"] == ["ops_pagos"]
    assert irene.get(f"/api/tasks/{task['id']}").status_code == 403
    _complete(oscar, task, {"action": "misrouted", "reason": "Es un giro internacional",
                            "correct_product": "Swift"})
    task = _only_task(irene, case["instance_id"])
    assert task["candidate_groups"] == ["ops_internacional"]
    detail = _case(pia, case["case_id"])
    assert detail["reprocess_count"] == 1 and detail["product"] == "Swift"
    assert detail["due_at"] == due and detail["n2_group"] == "ops_internacional"
    kinds = [(e["kind"], e["from_tier"], e["to_tier"]) for e in detail["timeline"]]
    assert kinds == [("registered", None, "N1"), ("escalated", "N1", "N2"),
                     ("returned_misrouted", "N2", "N2")]
    assert detail["timeline"][2]["reason"] == "Es un giro internacional"
    assert detail["timeline"][2]["actor"] == "oscar"
    _complete(irene, task, {"action": "resolve", "solution": "Giro reprocesado"})
    assert _case(pia, case["case_id"])["resolved_tier"] == "N2"


def test_incident_through_n3(support, ctx):
    pia, irene, tomas = support["pia"], support["irene"], support["tomas"]
    case = _register(pia, product="Swift", typology="Giro devuelto")
    _complete(pia, _only_task(pia, case["instance_id"]),
              {"action": "escalate", "reason": "No es consulta"})
    _complete(irene, _only_task(irene, case["instance_id"]),
              {"action": "incident", "reason": "Falla en la interfaz SWIFT"})
    task = _only_task(tomas, case["instance_id"])
    assert task["candidate_groups"] == ["tec_swift"] and task["name"] == "n3_fix"
    _complete(tomas, task, {"diagnosis": "Certificado vencido", "fix": "Certificado renovado"})
    confirm = _only_task(irene, case["instance_id"])
    assert confirm["name"] == "n2_confirm"
    _complete(irene, confirm, {"confirmed": True, "solution": "Giro enviado nuevamente"})
    detail = _case(pia, case["case_id"])
    assert detail["became_incident"] and detail["resolved_tier"] == "N3"
    assert [e["kind"] for e in detail["timeline"]] == [
        "registered", "escalated", "reclassified_incident", "fixed", "resolved"]
    ctx.dispatcher.drain()
    mails = " ".join(p.read_text() for p in ctx.settings.outbox_dir.glob("*.eml"))
    assert "incidente" in mails


def test_customer_information_request_waits_for_the_answer(support):
    pia = support["pia"]
    case = _register(pia, typology="Consulta de estado de pago")
    _complete(pia, _only_task(pia, case["instance_id"]),
              {"action": "request_info", "question": "Número de la orden de pago"})
    assert _case(pia, case["case_id"])["status"] == "waiting_customer"
    assert pia.get(f"/api/tasks?instance_id={case['instance_id']}").get_json()["total"] == 0
    answered = pia.post("/api/messages/customer_info", json={
        "correlation": {"case_id": case["case_id"]}, "payload": {"info": "Orden 555"}})
    assert answered.status_code == 202
    assert answered.get_json()["instances"] == [case["instance_id"]]
    detail = _case(pia, case["case_id"])
    assert detail["status"] == "open"
    assert [e["kind"] for e in detail["timeline"]][-2:] == ["info_requested", "info_received"]
    assert _only_task(pia, case["instance_id"])["name"] == "n1_review"


def test_reopen_inside_the_window_returns_to_the_resolving_tier(support, ctx):
    pia, oscar = support["pia"], support["oscar"]
    case = _register(pia)
    _complete(pia, _only_task(pia, case["instance_id"]), {"action": "escalate",
                                                        "reason": "Para N2"})
    _complete(oscar, _only_task(oscar, case["instance_id"]),
              {"action": "resolve", "solution": "Pago liberado"})
    reopened = pia.post(f"/api/cases/{case['case_id']}/reopen", json={"reason": "Sigue fallando"})
    assert reopened.status_code == 200, reopened.get_json()
    body = reopened.get_json()
    assert body["status"] == "open" and body["reopen_count"] == 1 and body["tier"] == "N2"
    assert body["timeline"][-1]["kind"] == "reopened"
    assert body["timeline"][-1]["reason"] == "Sigue fallando"
    assert _only_task(oscar, case["instance_id"])["name"] == "n2_review"


def test_reopen_after_the_window_opens_a_new_linked_case(support, ctx):
    pia = support["pia"]
    case = _register(pia, typology="Consulta de estado de pago")
    _complete(pia, _only_task(pia, case["instance_id"]), {"action": "resolve",
                                                        "solution": "Estado informado"})
    ctx.dispatcher.drain()
    with ctx.unit() as session:
        (timer,) = session.scalars(select(Job).where(Job.kind == "timer")).all()
    with time_machine.travel(timer.due_at + timedelta(seconds=1), tick=True):
        assert Ticker(ctx, ctx.dispatcher).tick()["timers"] == 1
        # case_closed is published and the SLA watch hears that the case is closed
        assert ctx.dispatcher.drain() == ["done", "done"]
    watch = pia.get("/api/instances?process_key=sla_watch").get_json()["items"]
    assert [w["status"] for w in watch] == ["completed"]
    closed = _case(pia, case["case_id"])
    assert closed["status"] == "closed" and closed["closed_at"]
    again = pia.post(f"/api/cases/{case['case_id']}/reopen", json={"reason": "Volvió a pasar"})
    assert again.status_code == 201
    new = again.get_json()
    assert new["id"] != case["case_id"] and new["links"]["reopened_from"] == case["case_id"]
    assert new["reincidence"] is True
    assert _case(pia, case["case_id"])["links"]["reopened_as"] == [new["id"]]


def test_reincidence_is_flagged_and_linked(support):
    pia = support["pia"]
    first = _register(pia, impact="one_user")
    second = _register(pia, impact="one_user")
    detail = _case(pia, second["case_id"])
    assert detail["reincidence"] and detail["links"]["reincidence_of"] == first["case_id"]
    assert _case(pia, first["case_id"])["links"]["reincidences"] == [second["case_id"]]
    other = _register(pia, typology="Pago no aplicado")
    assert _case(pia, other["case_id"])["reincidence"] is False


@pytest.mark.parametrize("field,value", [
    ("customer_id", "000"), ("product", "Cripto"), ("typology", "Inventada"),
    ("channel", "fax"), ("impact", "all")])
def test_unknown_references_are_422_naming_the_field(support, ctx, field, value):
    response = support["pia"].post("/api/cases", json={
        "customer_id": "900123456-7", "product": "Pagos", "typology": "Pago rechazado",
        "channel": "email", "subject": "s", "description": "d", "impact": "one_user",
        field: value})
    assert response.status_code == 422
    assert field in [e["field"] for e in response.get_json()["errors"]]
    with ctx.unit() as session:
        assert session.scalars(select(SupportCase)).all() == []
