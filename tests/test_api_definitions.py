"""Deploying models: versions by checksum, DMN and call activities, located 422s, MIWG suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import APPROVAL, DATA, ROOT, deploy_files

MIWG = ROOT.parent / "shared" / "conformance" / "miwg-reference"
PRICING = DATA / "bpmn" / "pricing"


def _upload(client, named: dict[str, bytes]):
    from io import BytesIO
    files = [(BytesIO(content), name) for name, content in named.items()]
    return client.post("/api/definitions", data={"files": files},
                       content_type="multipart/form-data")


def test_redeploy_unchanged_keeps_version_and_running_instances_keep_theirs(as_user, approval):
    diego, ana = as_user["diego"], as_user["ana"]
    old = ana.post("/api/instances", json={"process_key": "approval"}).get_json()
    same = deploy_files(as_user, APPROVAL).get_json()["definitions"][0]
    assert (same["version"], same["created"], same["id"]) == (1, False, approval["id"])
    changed = APPROVAL.read_bytes().replace(b"total = amount * 2", b"total = amount * 3")
    new = _upload(diego, {"approval.bpmn": changed}).get_json()["definitions"][0]
    assert new["version"] == 2 and new["created"] and new["checksum"] != approval["checksum"]
    versions = diego.get("/api/definitions?process_key=approval").get_json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert [d["version"] for d in diego.get("/api/definitions").get_json()["items"]] == [2]
    xml = diego.get(f"/api/definitions/{approval['id']}/xml")
    assert xml.mimetype == "application/xml" and b"amount * 2" in xml.data

    task = old["tasks"][0]
    ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"amount": 5}})
    assert ana.get(f"/api/instances/{old['id']}").get_json()["variables"]["total"] == 10
    fresh = ana.post("/api/instances", json={"process_key": "approval"}).get_json()
    assert fresh["version"] == 2


def test_dmn_and_call_activity_across_files(as_user):
    named = {p.name: p.read_bytes() for p in sorted(PRICING.iterdir())}
    deployed = _upload(as_user["diego"], named)
    assert deployed.status_code == 201, deployed.get_json()
    keys = sorted(d["process_key"] for d in deployed.get_json()["definitions"])
    assert keys == ["confirm_offer", "pricing"]
    ana = as_user["ana"]
    started = ana.post("/api/instances", json={"process_key": "pricing",
                                               "variables": {"segment": "pyme"}}).get_json()
    assert started["variables"]["discount"] == 10
    (task,) = started["tasks"]
    assert task["name"] == "confirm_price" and task["candidate_groups"] == ["sales"]
    done = ana.post(f"/api/tasks/{task['id']}/complete", json={"data": {"ok": True}})
    assert done.get_json()["instance"]["status"] == "completed"


def test_called_process_may_come_from_an_earlier_deploy(as_user):
    diego = as_user["diego"]
    assert _upload(diego, {"confirm_offer.bpmn": (PRICING / "confirm_offer.bpmn").read_bytes()}
                   ).status_code == 201
    later = _upload(diego, {"pricing.bpmn": (PRICING / "pricing.bpmn").read_bytes(),
                            "discount.dmn": (PRICING / "discount.dmn").read_bytes()})
    assert later.status_code == 201, later.get_json()
    assert [d["process_key"] for d in later.get_json()["definitions"]] == ["pricing"]


def test_missing_form_is_a_located_422_and_uploading_the_form_fixes_it(as_user, tmp_path):
    diego = as_user["diego"]
    source = APPROVAL.read_bytes().replace(b"approval_decision.schema.json", b"decision.json")
    refused = _upload(diego, {"approval.bpmn": source})
    assert refused.status_code == 422
    (error,) = refused.get_json()["errors"]
    assert error["file"] == "approval.bpmn" and error["element_id"] == "approve"
    line = next(i for i, text in enumerate(source.decode().splitlines(), 1)
                if "decision.json" in text)
    assert error["line"] == line and "decision.json" in error["message"]
    form = b'{"type": "object", "properties": {"approved": {"type": "boolean"}}}'
    accepted = _upload(diego, {"approval.bpmn": source, "decision.json": form})
    assert accepted.status_code == 201
    assert diego.get("/api/definitions").get_json()["items"][0]["process_key"] == "approval"


@pytest.mark.parametrize("named,needle", [
    ({"notes.txt": b"hello"}, ".bpmn"),
    ({"a.bpmn": b"<not xml"}, "well-formed"),
    ({"a.bpmn": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b"<x>&e;</x>"}, ""),
    ({"a.bpmn": APPROVAL.read_bytes().replace(b'isExecutable="true"', b'isExecutable="false"')},
     "executable"),
    ({"a.bpmn": APPROVAL.read_bytes(), "form.json": b"{broken"}, "json"),
])
def test_bad_uploads_are_422_with_file_and_message(as_user, named, needle):
    response = _upload(as_user["diego"], named)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["errors"]
    assert all(e["message"] for e in body["errors"])
    assert needle.lower() in " ".join(e["message"] for e in body["errors"]).lower()
    assert b"root:" not in response.data
    assert as_user["diego"].get("/api/definitions").get_json()["items"] == []


def test_oversized_upload_is_refused(as_user):
    response = _upload(as_user["diego"], {"big.bpmn": b"<a>" + b" " * (5 * 1024 * 1024) + b"</a>"})
    assert response.status_code in (413, 422)
    assert response.get_json()["code"] == response.status_code


# a missing folder fails (the placeholder cannot be read) rather than parametrizing nothing
MIWG_FILES = sorted(MIWG.glob("*.bpmn")) or [MIWG / "<miwg-reference folder missing>"]


def test_the_miwg_suite_is_all_there():
    assert len(MIWG_FILES) == 21, f"expected the 21 MIWG reference models in {MIWG}"


@pytest.mark.parametrize("path", MIWG_FILES, ids=lambda p: p.name)
def test_every_miwg_model_deploys_or_is_refused_with_a_reason(as_user, path: Path):
    response = _upload(as_user["diego"], {path.name: path.read_bytes()})
    assert response.status_code in (201, 422), response.data[:300]
    if response.status_code == 422:
        errors = response.get_json()["errors"]
        assert errors and all(e["file"] == path.name and e["message"] for e in errors)
    else:
        assert response.get_json()["definitions"]


# -- expressions checked at deploy, encodings, size message ------------------------------------

DMN_OUTPUT = b"<text>10</text>"


def test_unsafe_dmn_entry_is_a_located_422(as_user):
    named = {p.name: p.read_bytes() for p in sorted(PRICING.iterdir())}
    assert named["discount.dmn"].count(DMN_OUTPUT) == 1
    named["discount.dmn"] = named["discount.dmn"].replace(
        DMN_OUTPUT, b"<text>__import__('os').getcwd()</text>")
    refused = _upload(as_user["diego"], named)
    assert refused.status_code == 422, refused.get_json()
    errors = refused.get_json()["errors"]
    line = next(n for n, text in enumerate(named["discount.dmn"].decode().splitlines(), 1)
                if "__import__" in text)
    assert errors and all(e["file"] == "discount.dmn" and e["line"] == line for e in errors)
    assert all(e["element_id"] and "__import__" in e["message"] for e in errors)
    assert as_user["diego"].get("/api/definitions").get_json()["items"] == []


@pytest.mark.parametrize("value", ["__import__('os')", "url +"])
def test_unsafe_or_broken_service_parameter_is_a_located_422(as_user, value):
    from xml.sax.saxutils import quoteattr
    path = DATA / "bpmn" / "service_call.bpmn"
    needle = b'<spiffworkflow:parameter id="url" type="str" value="url"/>'
    content = path.read_bytes()
    assert content.count(needle) == 1
    changed = content.replace(needle, needle.replace(b'"url"/>', quoteattr(value).encode() + b"/>"))
    refused = _upload(as_user["diego"], {path.name: changed})
    assert refused.status_code == 422, refused.get_json()
    line = next(n for n, text in enumerate(content.decode().splitlines(), 1)
                if needle.decode() in text)
    errors = refused.get_json()["errors"]
    assert errors and all(e["file"] == path.name and e["line"] == line and e["element_id"]
                          and e["message"].startswith('Service parameter "url": ')
                          for e in errors)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16"])
def test_model_in_another_encoding_deploys_and_runs(as_user, encoding):
    diego, ana = as_user["diego"], as_user["ana"]
    source = APPROVAL.read_text(encoding="utf-8").replace(
        'encoding="UTF-8"', f'encoding="{encoding}"').replace(
        'name="Enter amount"', 'name="Introducir importe (año fiscal)"')
    deployed = _upload(diego, {"approval.bpmn": source.encode(encoding)})
    assert deployed.status_code == 201, deployed.get_json()
    definition = deployed.get_json()["definitions"][0]
    xml = diego.get(f"/api/definitions/{definition['id']}/xml")
    assert "año fiscal" in xml.data.decode("utf-8")
    assert xml.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    started = ana.post("/api/instances", json={"process_key": "approval"})
    assert started.status_code == 201, started.get_json()
    assert started.get_json()["tasks"][0]["name"] == "enter_amount"


def test_latin1_called_process_from_an_earlier_deploy(as_user):
    diego = as_user["diego"]
    called = (PRICING / "confirm_offer.bpmn").read_text(encoding="utf-8").replace(
        'encoding="UTF-8"', 'encoding="ISO-8859-1"')
    called = called.replace("<bpmn:process ", "<!-- confirmación -->\n  <bpmn:process ", 1)
    first = _upload(diego, {"confirm_offer.bpmn": called.encode("latin-1")})
    assert first.status_code == 201, first.get_json()
    later = _upload(diego, {"pricing.bpmn": (PRICING / "pricing.bpmn").read_bytes(),
                            "discount.dmn": (PRICING / "discount.dmn").read_bytes()})
    assert later.status_code == 201, later.get_json()


def test_oversized_file_message_names_the_model_size_limit(as_user):
    from app.engine.xmlsafe import MAX_XML_BYTES
    response = _upload(as_user["diego"], {"big.bpmn": b" " * (MAX_XML_BYTES + 1)})
    assert response.status_code == 422
    assert {"file": "big.bpmn", "line": None, "element_id": None,
            "message": f"file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB"} \
        in response.get_json()["errors"]


@pytest.mark.parametrize(("form", "needle"), [
    (b'{"type": "object", "properties": {"approved": {"$ref": "http://169.254.169.254/x"}}}',
     "$ref"),
    (b'{"type": "object", "$defs": {"a": {"$ref": "other.json#/x"}}}', "$ref"),
    (b'{"type": "object", "properties": {"code": {"type": "string", "pattern": "(a)\\\\1"}}}',
     "RE2"),
])
def test_unsafe_form_is_refused_at_deploy(as_user, form, needle):
    source = APPROVAL.read_bytes().replace(b"approval_decision.schema.json", b"decision.json")
    refused = _upload(as_user["diego"], {"approval.bpmn": source, "decision.json": form})
    assert refused.status_code == 422, refused.get_json()
    [error] = refused.get_json()["errors"]
    assert error["file"] == "decision.json" and needle in error["message"]
