"""Hostile input gets a clear 4xx {code, status, message, errors} naming the field, never a 500;
replies encode what scripts put in the variables."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError

from app.persistence.models import Event, ProcessInstance, Task

HUGE = "99999999999999999999"  # > 2^64
INT64_PLUS_ONE = str(2**63)


def _start(client, **body):
    response = client.post("/api/instances", json={"process_key": "approval", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status and body["status"] and body["message"]
    return body


def _fields(body: dict) -> list[str]:
    return [e["field"] for e in body["errors"]]


def _nothing_written(ctx) -> None:
    with ctx.unit() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
        assert session.scalar(select(func.count()).select_from(Event)) == 0


# --- ids and numbers past int64 ------------------------------------------------------
@pytest.mark.parametrize("url", [
    f"/api/instances/{HUGE}", f"/api/instances/{INT64_PLUS_ONE}",
    f"/api/instances/{HUGE}/history", f"/api/tasks/{INT64_PLUS_ONE}", f"/api/tasks/{HUGE}",
    "/api/tasks/0", f"/api/cases/{HUGE}", "/api/instances/" + "9" * 5000,
])
def test_ids_past_int64_are_404(as_user, url):
    assert _error(as_user["olga"].get(url), 404)


@pytest.mark.parametrize("url", [f"/api/instances/{HUGE}/suspend",
                                 f"/api/tasks/{INT64_PLUS_ONE}/complete",
                                 f"/api/incidents/{HUGE}/retry"])
def test_posts_to_ids_past_int64_are_404(as_user, url):
    assert _error(as_user["root"].post(url, json={}), 404)


def test_the_largest_id_is_a_plain_not_found(as_user):
    body = _error(as_user["olga"].get(f"/api/instances/{2**63 - 1}"), 404)
    assert "instance" in body["message"]


@pytest.mark.parametrize("url,field", [
    (f"/api/instances?page={HUGE}", "page"),
    ("/api/instances?page=1000001", "page"),
    (f"/api/tasks?page={HUGE}", "page"),
    (f"/api/tasks?instance_id={HUGE}", "instance_id"),
    (f"/api/tasks?instance_id={INT64_PLUS_ONE}", "instance_id"),
    (f"/api/incidents?instance_id={HUGE}", "instance_id"),
    (f"/api/cases?page={HUGE}", "page"),
])
def test_query_numbers_past_their_range_are_422(as_user, url, field):
    body = _error(as_user["olga"].get(url), 422)
    assert _fields(body) == [field]
    assert field in body["message"]


def test_the_last_page_still_answers(as_user, approval):
    assert as_user["olga"].get("/api/instances?page=1000000").get_json()["items"] == []
    assert as_user["olga"].get(f"/api/tasks?instance_id={2**63 - 1}").get_json()["total"] == 0


# --- NUL bytes and lone surrogates ---------------------------------------------------
@pytest.mark.parametrize("body,field", [
    ({"process_key": "approval", "business_key": "a\x00b"}, "business_key"),
    ({"process_key": "approval\x00"}, "process_key"),
    ({"process_key": "approval", "variables": {"note": "a\x00b"}}, "variables.note"),
    ({"process_key": "approval", "variables": {"note\x00": 1}}, "variables.note\x00"),
    ({"process_key": "approval", "variables": {"items": ["ok", "\x00"]}}, "variables.items[1]"),
])
def test_nul_in_a_body_is_422_naming_the_field(as_user, approval, ctx, body, field):
    found = _error(as_user["ana"].post("/api/instances", json=body), 422)
    assert field in _fields(found)
    assert "NUL" in found["message"]
    _nothing_written(ctx)


@pytest.mark.parametrize("raw,field", [
    ('{"process_key": "approval", "business_key": "\\ud800"}', "business_key"),
    ('{"process_key": "\\udfff"}', "process_key"),
    ('{"process_key": "approval", "variables": {"v": "x\\udc00y"}}', "variables.v"),
])
def test_lone_surrogates_in_a_body_are_422_naming_the_field(as_user, approval, ctx, raw, field):
    found = _error(as_user["ana"].post("/api/instances", data=raw,
                                       content_type="application/json"), 422)
    assert field in _fields(found)
    _nothing_written(ctx)


@pytest.mark.parametrize("url,field", [
    ("/api/instances?business_key=a%00b", "business_key"),
    ("/api/instances?process_key=%00", "process_key"),
    ("/api/definitions?process_key=a%00", "process_key"),
    ("/api/tasks?candidate_group=sales%00", "candidate_group"),
    ("/api/customers?q=acme%00", "q"),
])
def test_nul_in_a_query_parameter_is_422_naming_it(as_user, url, field):
    user = "diego" if url.startswith("/api/definitions") else "olga"
    assert field in _fields(_error(as_user[user].get(url), 422))


def test_nul_in_a_path_value_is_422_naming_it(as_user):
    found = _error(as_user["ana"].post("/api/messages/lead%00created", json={}), 422)
    assert _fields(found) == ["name"]
    assert _fields(_error(as_user["olga"].get("/api/customers/9001%00"), 422)) == ["customer_id"]


def test_nul_in_completion_data_and_assign_is_422(as_user, approval, ctx):
    task = _start(as_user["ana"])["tasks"][0]
    found = _error(as_user["ana"].post(f"/api/tasks/{task['id']}/complete",
                                       json={"data": {"amount": 1, "note": "\x00"}}), 422)
    assert _fields(found) == ["data.note"]
    assigned = as_user["olga"].post(f"/api/tasks/{task['id']}/assign",
                                    json={"username": "ana\x00"})
    assert _fields(_error(assigned, 422)) == ["username"]
    assert as_user["ana"].get(f"/api/tasks/{task['id']}").get_json()["status"] == "open"


def test_nul_in_an_uploaded_file_name_is_422(as_user):
    files = {"files": [(io.BytesIO(b"<x/>"), "a\x00.bpmn")]}
    response = as_user["diego"].post("/api/definitions", data=files,
                                     content_type="multipart/form-data")
    assert _fields(_error(response, 422)) == ["files"]
    two = {"files": [(io.BytesIO(b"<x/>"), "ok.bpmn"), (io.BytesIO(b"<x/>"), "b\x00.bpmn")]}
    response = as_user["diego"].post("/api/definitions", data=two,
                                     content_type="multipart/form-data")
    assert _fields(_error(response, 422)) == ["files[1]"]


# --- bodies that are not acceptable JSON ---------------------------------------------
@pytest.mark.parametrize("raw,needle", [
    ('{"process_key": "approval", "variables": {"v": NaN}}', "NaN"),
    ('{"process_key": "approval", "variables": {"v": Infinity}}', "Infinity"),
    ('{"process_key": "approval", "variables": {"v": -Infinity}}', "Infinity"),
    ('{"process_key": "approval", "variables": {"v": 1e400}}', "out of range"),
    ('{"process_key": "approval", "variables": {"v": ' + "7" * 5000 + "}}", "digits"),
    ('{"process_key": "approval", "variables": {"v": ' + "[" * 3000 + "]" * 3000 + "}}",
     "nested"),
    ('{"process_key": "approval", "variables": {"v": ' + "[" * 70 + "]" * 70 + "}}",
     "nested"),
    ('{"process_key": "approval",', "not valid JSON"),
])
def test_unacceptable_json_is_400_with_a_clear_message(as_user, approval, ctx, raw, needle):
    body = _error(as_user["ana"].post("/api/instances", data=raw,
                                      content_type="application/json"), 400)
    assert needle in body["message"]
    assert _fields(body) == ["body"]
    _nothing_written(ctx)


def test_nan_in_a_completion_is_400_and_the_task_stays_open(as_user, approval):
    task = _start(as_user["ana"])["tasks"][0]
    done = as_user["ana"].post(f"/api/tasks/{task['id']}/complete",
                               data='{"data": {"amount": NaN}}', content_type="application/json")
    assert "NaN" in _error(done, 400)["message"]
    assert as_user["ana"].get(f"/api/tasks/{task['id']}").get_json()["status"] == "open"


def test_invalid_utf8_is_400(as_user, approval):
    body = _error(as_user["ana"].post("/api/instances", data=b'{"process_key": "\xff"}',
                                      content_type="application/json"), 400)
    assert "UTF-8" in body["message"]


def test_a_non_json_body_is_415(as_user, approval, ctx):
    response = as_user["ana"].post("/api/instances", data='{"process_key": "approval"}',
                                   content_type="text/plain")
    assert "application/json" in _error(response, 415)["message"]
    task_body = as_user["ana"].post("/api/messages/lead_created", data="payload=1",
                                    content_type="application/x-www-form-urlencoded")
    _error(task_body, 415)
    _nothing_written(ctx)


def test_a_json_body_that_is_not_an_object_names_the_body(as_user, approval):
    body = _error(as_user["ana"].post("/api/instances", json=[1, 2]), 422)
    assert _fields(body) == ["body"]
    assert "_schema" not in body["message"]


def test_an_empty_json_body_uses_the_defaults(as_user, approval):
    task = _start(as_user["olga"])["tasks"][0]
    response = as_user["root"].post(f"/api/tasks/{task['id']}/complete", data="",
                                    content_type="application/json")
    assert _fields(_error(response, 422)) == ["data.amount"]  # the form requires it


# --- the database's own refusal is the last resort -------------------------------------
def test_a_database_data_error_is_422(app, ctx, as_user):
    def probe():
        with ctx.unit() as session:
            if ctx.is_postgres:  # a real refusal of the database
                session.execute(text("SELECT CAST(:v AS INTEGER)"), {"v": "not a number"})
            raise DataError("SELECT CAST(:v AS INTEGER)", {"v": "x"},
                            ValueError("invalid input syntax for type integer"))

    app.add_url_rule("/api/probe-data-error", "probe_data_error", probe)
    body = _error(as_user["olga"].get("/api/probe-data-error"), 422)
    assert "database" in body["message"] and _fields(body) == ["body"]


# --- authentication comes first ------------------------------------------------------
@pytest.mark.parametrize("method,url,kwargs", [
    ("post", "/api/instances", {"data": "{", "content_type": "application/json"}),
    ("post", "/api/instances", {"data": '{"v": NaN}', "content_type": "application/json"}),
    ("post", "/api/instances", {"data": "x", "content_type": "text/plain"}),
    ("get", "/api/tasks?page=abc", {}),
    ("get", f"/api/instances/{HUGE}", {}),
    ("get", "/api/instances?business_key=a%00", {}),
    ("post", "/api/messages/m%00", {"json": {}}),
    ("get", "/api/nowhere", {}),
])
def test_anonymous_callers_get_401_before_any_parsing(app, method, url, kwargs):
    response = getattr(app.test_client(), method)(url, **kwargs)
    assert _error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_docs_and_the_root_need_no_token(app):
    client = app.test_client()
    assert client.get("/api/openapi.json").status_code == 200
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    page = docs.get_data(as_text=True)
    assert "swagger-ui-dist@5." in page and "swagger-ui-dist/" not in page  # a pinned version
    root = client.get("/")
    assert root.status_code == 302 and root.headers["Location"].endswith("/api/docs")
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_the_id_bounds(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    (param,) = spec["paths"]["/api/instances/{instance_id}"]["parameters"]
    assert param["schema"] == {"type": "integer", "format": "int64", "minimum": 1,
                               "maximum": 2**63 - 1}


# --- replies encode what scripts put in the variables ----------------------------------
SCRIPTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"
    targetNamespace="http://clientconnect.example/test">
  <bpmn:process id="typed" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="sales">
      <bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>t</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>u</bpmn:flowNodeRef><bpmn:flowNodeRef>e</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="t"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>SCRIPT</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="u"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="u"/>
    <bpmn:sequenceFlow id="f3" sourceRef="u" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""
SCRIPT = """when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
day = date(2024, 1, 2)
later = when + timedelta(hours=1)"""


def test_instance_variables_serialize_as_iso_8601(as_user):
    model = SCRIPTED.replace("SCRIPT", escape(SCRIPT)).encode()
    deployed = as_user["diego"].post("/api/definitions",
                                     data={"files": [(io.BytesIO(model), "typed.bpmn")]},
                                     content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.get_json()
    started = as_user["ana"].post("/api/instances", json={"process_key": "typed"})
    assert started.status_code == 201, started.get_data(as_text=True)
    assert started.get_json()["incidents"] == []
    expected = {"when": "2024-01-02T03:04:05+00:00", "day": "2024-01-02",
                "later": "2024-01-02T04:04:05+00:00"}
    assert {k: started.get_json()["variables"].get(k) for k in expected} == expected
    detail = as_user["ana"].get(f"/api/instances/{started.get_json()['id']}")
    assert detail.status_code == 200
    assert {k: detail.get_json()["variables"].get(k) for k in expected} == expected
    assert detail.get_json()["started_at"].endswith("+00:00")  # ISO 8601, not RFC 822


def test_the_json_provider_encodes_dates_decimals_sets_and_durations(app):
    encoded = app.json.loads(app.json.dumps({
        "at": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "day": date(2024, 5, 6),
        "amount": Decimal("10.50"), "tags": frozenset({"y", "x"}), "mixed": {2, "a"},
        "wait": timedelta(minutes=2)}))
    assert encoded == {"at": "2024-05-06T07:08:09+00:00", "day": "2024-05-06",
                       "amount": "10.50", "tags": ["x", "y"], "mixed": [2, "a"],
                       "wait": 120.0}


def test_hostile_requests_leave_no_task_behind(as_user, approval, ctx):
    as_user["ana"].post("/api/instances", json={"process_key": "approval\x00"})
    as_user["ana"].post("/api/instances", data='{"process_key": NaN}',
                        content_type="application/json")
    with ctx.unit() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
