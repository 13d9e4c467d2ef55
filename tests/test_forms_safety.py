"""Form schemas are designer input: no $ref is ever fetched, no pattern can stall a completion."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time

import pytest
from conftest import APPROVAL, FORMS

from app.domain.errors import ValidationFailed
from app.persistence.models import ProcessDefinition
from app.services import forms

AMOUNT_FORM = "approval_amount.schema.json"
CATASTROPHIC = "a" * 27 + "!"  # about 2**27 backtracking steps for ^(a+)+$ in Python's re


@pytest.fixture
def schema_server():
    """A real HTTP server on localhost serving a schema; `hits` lists the paths requested."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/schema.json", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _upload(client, named: dict[str, bytes]):
    files = [(io.BytesIO(content), name) for name, content in named.items()]
    return client.post("/api/definitions", data={"files": files},
                       content_type="multipart/form-data")


def _amount_form(**extra_properties) -> dict:
    form = json.loads((FORMS / AMOUNT_FORM).read_text())
    form["properties"].update(extra_properties)
    return form


def _deploy_with_amount_form(as_user, form: dict) -> None:
    deployed = _upload(as_user["diego"], {"approval.bpmn": APPROVAL.read_bytes(),
                                          AMOUNT_FORM: json.dumps(form).encode()})
    assert deployed.status_code == 201, deployed.get_json()


def _open_amount_task(as_user) -> int:
    started = as_user["ana"].post("/api/instances", json={"process_key": "approval"})
    assert started.status_code == 201, started.get_json()
    return started.get_json()["tasks"][0]["id"]


# -- remote references (SSRF) ----------------------------------------------------------------

def test_validation_never_fetches_a_remote_ref(schema_server):
    url, hits = schema_server
    schema = {"type": "object", "properties": {"code": {"$ref": url}}}
    with pytest.raises(ValidationFailed) as refused:
        forms.validate(schema, {"code": 1})
    assert hits == []
    [error] = refused.value.errors
    assert error["field"] == "data" and url in error["message"]


def test_the_schema_server_is_reachable_so_the_test_above_means_something(schema_server):
    import requests

    url, hits = schema_server
    assert requests.get(url, timeout=5).json() == {"type": "string"}
    assert hits == ["/schema.json"]


def test_a_stored_form_with_a_remote_ref_is_not_fetched_at_completion(as_user, ctx,
                                                                       schema_server):
    """A form stored before deploy refused remote refs: completing its task fetches nothing."""
    url, hits = schema_server
    _deploy_with_amount_form(as_user, _amount_form())
    with ctx.unit() as session:
        definition = session.query(ProcessDefinition).one()
        definition.forms = {**definition.forms,
                            AMOUNT_FORM: _amount_form(note={"$ref": url})}
    task_id = _open_amount_task(as_user)
    refused = as_user["ana"].post(f"/api/tasks/{task_id}/complete",
                                  json={"data": {"amount": 5, "note": "x"}})
    assert refused.status_code == 422, refused.get_json()
    assert hits == []


@pytest.mark.parametrize("ref", ["http://169.254.169.254/latest/meta-data", "file:///etc/passwd",
                                 "other.json", "https://json-schema.org/draft/2020-12/schema"])
def test_deploy_refuses_a_non_local_ref(ref):
    reason = forms.check_schema({"type": "object", "properties": {"a": {"$ref": ref}}})
    assert reason and "$ref" in reason and "#/properties/a" in reason


def test_local_refs_are_accepted_and_work():
    schema = {"type": "object", "$defs": {"code": {"type": "string"}},
              "properties": {"a": {"$ref": "#/$defs/code"}}}
    assert forms.check_schema(schema) is None
    assert forms.validate(schema, {"a": "x"}) == {"a": "x"}
    with pytest.raises(ValidationFailed):
        forms.validate(schema, {"a": 1})


def test_data_keywords_and_property_names_are_not_mistaken_for_refs():
    schema = {"type": "object", "properties": {
        "$ref": {"type": "string"},
        "link": {"enum": [{"$ref": "http://example.com"}], "default": {"$ref": "x"}}}}
    assert forms.check_schema(schema) is None


# -- regular expressions (ReDoS) -------------------------------------------------------------

def test_catastrophic_pattern_does_not_stall_a_completion(as_user):
    _deploy_with_amount_form(as_user, _amount_form(code={"type": "string",
                                                         "pattern": "^(a+)+$"}))
    task_id = _open_amount_task(as_user)
    started = time.monotonic()
    refused = as_user["ana"].post(f"/api/tasks/{task_id}/complete",
                                  json={"data": {"amount": 5, "code": CATASTROPHIC}})
    assert time.monotonic() - started < 2
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == [
        {"field": "data.code", "message": f"{CATASTROPHIC!r} does not match '^(a+)+$'"}]
    done = as_user["ana"].post(f"/api/tasks/{task_id}/complete",
                               json={"data": {"amount": 5, "code": "aaaa"}})
    assert done.status_code == 200, done.get_json()


def test_catastrophic_pattern_properties_are_bounded_too():
    schema = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}},
              "additionalProperties": False}
    started = time.monotonic()
    with pytest.raises(ValidationFailed) as refused:
        forms.validate(schema, {CATASTROPHIC: 1, "aaa": "not an integer"})
    assert time.monotonic() - started < 2
    messages = sorted(e["message"] for e in refused.value.errors)
    assert messages == [f"'{CATASTROPHIC}' does not match any of the regexes: '^(a+)+$'",
                        "'not an integer' is not of type 'integer'"]
    assert forms.validate(schema, {"aaa": 1}) == {"aaa": 1}


def test_strings_longer_than_the_bound_fail_a_pattern_without_matching():
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "a"}}}
    limit = forms.MAX_PATTERN_INPUT
    assert forms.validate(schema, {"code": "a" * limit}) == {"code": "a" * limit}
    with pytest.raises(ValidationFailed) as refused:
        forms.validate(schema, {"code": "a" * (limit + 1)})
    assert refused.value.errors == [{"field": "data.code", "message": (
        f"is longer than {limit} characters, too long to be checked against 'a'")}]


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)b", "(?<!x)y"])
def test_deploy_refuses_patterns_re2_cannot_run(pattern):
    for schema in ({"type": "string", "pattern": pattern},
                   {"type": "object", "patternProperties": {pattern: {}}}):
        reason = forms.check_schema(schema)
        assert reason and "RE2" in reason and repr(pattern) in reason


def test_deploy_refuses_unevaluated_properties_with_pattern_properties():
    schema = {"type": "object", "unevaluatedProperties": False,
              "allOf": [{"patternProperties": {"^x": {}}}]}
    assert forms.check_schema(schema) == forms.UNEVALUATED_WITH_PATTERNS
    with pytest.raises(ValidationFailed):
        forms.validate(schema, {"x": 1})


def test_ordinary_patterns_keep_their_meaning():
    schema = {"type": "object", "properties": {
        "email": {"type": "string", "pattern": r"^[^@\s]+@([a-z0-9-]+\.)+[a-z]{2,}$"},
        "nit": {"type": "string", "pattern": r"^\d{9}-\d$"}},
        "patternProperties": {"^tag_": {"type": "string"}}, "additionalProperties": False}
    assert forms.check_schema(schema) is None
    good = {"email": "ana@mail.example.com", "nit": "900123456-7", "tag_vip": "yes"}
    assert forms.validate(schema, good) == good
    with pytest.raises(ValidationFailed) as refused:
        forms.validate(schema, {"email": "ana@", "nit": "9001", "other": 1})
    assert sorted(e["field"] for e in refused.value.errors) == [
        "data", "data.email", "data.nit"]
