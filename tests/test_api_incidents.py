"""Script errors, sandbox escapes and failing service calls become incidents an operator retries."""

from __future__ import annotations

import pytest
from conftest import DATA, QuietHandler, deploy_files, local_server


@pytest.fixture
def hook():
    """A local web hook answering 500 until told to succeed."""
    state = {"fail": True, "calls": 0}

    class Handler(QuietHandler):
        def do_POST(self):
            state["calls"] += 1
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            code, body = (500, b"down") if state["fail"] else (200, b'{"ok": true}')
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

    with local_server(Handler) as base:
        state["url"] = f"{base}/hook"
        yield state


def _deploy(as_user, name):
    response = deploy_files(as_user, DATA / "bpmn" / f"{name}.bpmn")
    assert response.status_code == 201, response.get_json()


def test_service_call_retries_then_incident_then_operator_retry(as_user, ctx, hook):
    _deploy(as_user, "notify")
    ana, olga = as_user["ana"], as_user["olga"]
    started = ana.post("/api/instances", json={"process_key": "notify", "variables": {
        "hook_url": hook["url"], "customer": "acme"}}).get_json()
    assert started["tasks"] == [] and started["status"] == "active"
    outcomes = ctx.dispatcher.drain()
    assert outcomes == ["retry", "skipped"] or outcomes[0] == "retry"
    from workers.ticker import Ticker
    ticker = Ticker(ctx, ctx.dispatcher)
    for _ in range(5):
        ticker.tick()
        ctx.dispatcher.drain()
    assert hook["calls"] == 4
    detail = ana.get(f"/api/instances/{started['id']}").get_json()
    assert detail["status"] == "active"
    (incident,) = detail["incidents"]
    assert incident["element_id"] == "call_hook" and "500" in incident["message"]
    assert ana.post(f"/api/incidents/{incident['id']}/retry").status_code == 403
    hook["fail"] = False
    retried = olga.post(f"/api/incidents/{incident['id']}/retry")
    assert retried.status_code == 200 and retried.get_json()["status"] == "resolved"
    assert olga.post(f"/api/incidents/{incident['id']}/retry").status_code == 409
    assert ctx.dispatcher.drain() == ["done"]
    detail = ana.get(f"/api/instances/{started['id']}").get_json()
    assert detail["incidents"] == [] and detail["variables"]["hook"] == {
        "status": 200, "json": {"ok": True}}
    assert [t["name"] for t in detail["tasks"]] == ["review"]
    assert olga.get("/api/incidents?status=open").get_json()["items"] == []


def test_running_a_service_job_twice_is_harmless(as_user, ctx, hook):
    _deploy(as_user, "notify")
    hook["fail"] = False
    started = as_user["ana"].post("/api/instances", json={"process_key": "notify", "variables": {
        "hook_url": hook["url"], "customer": "acme"}}).get_json()
    (job_id,) = ctx.dispatcher.ids
    ctx.dispatcher.ids.append(job_id)
    assert ctx.dispatcher.drain() == ["done", "skipped"]
    assert hook["calls"] == 1
    detail = as_user["ana"].get(f"/api/instances/{started['id']}").get_json()
    assert [t["name"] for t in detail["tasks"]] == ["review"]


def test_script_error_is_an_incident_and_retry_runs_it_again(as_user, ctx):
    _deploy(as_user, "scripted")
    ana, olga = as_user["ana"], as_user["olga"]
    started = ana.post("/api/instances", json={"process_key": "scripted", "variables": {
        "parts": 0, "subject": "text", "attribute": "upper"}})
    assert started.status_code == 201
    body = started.get_json()
    (incident,) = body["incidents"]
    assert incident["element_id"] == "compute" and "division by zero" in incident["message"]
    retried = olga.post(f"/api/incidents/{incident['id']}/retry").get_json()
    assert retried["status"] == "resolved"
    again = ana.get(f"/api/instances/{body['id']}").get_json()["incidents"]
    assert len(again) == 1 and again[0]["id"] != incident["id"]


def test_sandbox_escape_at_run_time_is_an_incident_without_side_effect(as_user, tmp_path):
    _deploy(as_user, "scripted")
    ana = as_user["ana"]
    started = ana.post("/api/instances", json={"process_key": "scripted", "variables": {
        "parts": 4, "subject": 1, "attribute": "__class__"}}).get_json()
    (incident,) = started["incidents"]
    assert incident["element_id"] == "compute"
    assert "kind" not in started["variables"]
    history = ana.get(f"/api/instances/{started['id']}/history").get_json()["items"]
    opened = [e for e in history if e["kind"] == "incident_opened"]
    assert opened[0]["detail"]["reason"] == "sandbox_violation"


@pytest.mark.parametrize("script,needle", [
    ("__import__('os').system('touch /tmp/pwned')", "_"),
    ("x = ().__class__.__base__.__subclasses__()", "_"),
    ("import os", "import"),
])
def test_sandbox_escape_at_deploy_time_is_a_422_naming_the_element(as_user, script, needle,
                                                                   tmp_path):
    source = (DATA / "bpmn" / "scripted.bpmn").read_text()
    original = "share = 100 / parts\nkind = getattr(subject, attribute)"
    bad = tmp_path / "scripted.bpmn"
    bad.write_text(source.replace(original, script))
    response = deploy_files(as_user, bad)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert {(e["element_id"], e["file"]) for e in errors} == {("compute", "scripted.bpmn")}
    error = errors[0]
    assert error["line"] == source.splitlines().index(
        next(line for line in source.splitlines() if "<bpmn:script>" in line)) + 1
    assert needle in error["message"].lower() or "not allowed" in error["message"].lower()


def test_spiffworkflow_retry_overrides_the_retry_count(as_user, ctx, hook):
    source = (DATA / "bpmn" / "notify.bpmn").read_bytes().replace(
        b"</spiffworkflow:parameters>",
        b'</spiffworkflow:parameters><spiffworkflow:retry retries="1" />')
    from io import BytesIO
    deployed = as_user["diego"].post("/api/definitions", data={"files": [
        (BytesIO(source), "notify.bpmn")]}, content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.get_json()
    started = as_user["ana"].post("/api/instances", json={"process_key": "notify", "variables": {
        "hook_url": hook["url"], "customer": "acme"}}).get_json()
    from workers.ticker import Ticker
    ticker = Ticker(ctx, ctx.dispatcher)
    for _ in range(4):
        ctx.dispatcher.drain()
        ticker.tick()
    assert hook["calls"] == 2
    detail = as_user["ana"].get(f"/api/instances/{started['id']}").get_json()
    assert len(detail["incidents"]) == 1
