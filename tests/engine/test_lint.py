"""Pre-deploy lint: one hand-written fixture per check, located issues, hostile XML refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.engine.compiler import Issue, compile_files
from app.engine.lint import lint_files
from app.engine.sandbox import check_source
from app.engine.xmlsafe import MAX_XML_BYTES

DATA = Path(__file__).parent / "data" / "lint"
CONNECTORS = {"http_request", "send_email"}
AVAILABLE = "available connectors: http_request, send_email"
PRESENT_FORMS = {"contact-schema.json", "contact-uischema.json", "review-uischema.json"}


def lint(name: str, content: bytes | None = None, forms=PRESENT_FORMS) -> list[Issue]:
    data = DATA.joinpath(name).read_bytes() if content is None else content
    return lint_files({name: data}, form_exists=forms.__contains__, connectors=CONNECTORS)


def line_of(name: str, needle: str) -> int:
    """1-based line of the only line of fixture `name` that contains `needle`."""
    lines = DATA.joinpath(name).read_text().splitlines()
    found = [number for number, text in enumerate(lines, 1) if needle in text]
    assert len(found) == 1, f"{needle!r} found on lines {found} of {name}"
    return found[0]


def issue(name: str, needle: str, element_id: str | None, message: str) -> Issue:
    return Issue(name, line_of(name, needle), element_id, message)


# -- clean models ----------------------------------------------------------------------------

def test_clean_bpmn_has_no_issues():
    assert lint("clean.bpmn") == []


def test_clean_bpmn_also_compiles():
    compiled = compile_files({"clean.bpmn": DATA.joinpath("clean.bpmn").read_bytes()})
    assert [c.process_key for c in compiled] == ["clean_process"]


def test_clean_dmn_has_no_issues():
    assert lint("clean.dmn") == []


def test_form_files_and_other_files_are_not_linted():
    files = {"contact-schema.json": b"{not xml", "notes.txt": b"<<<"}
    assert lint_files(files, form_exists=lambda _: True, connectors=CONNECTORS) == []


def test_issues_of_several_files_are_all_reported():
    files = {name: DATA.joinpath(name).read_bytes()
             for name in ("clean.bpmn", "missing_form.bpmn", "timer_unquoted.bpmn")}
    issues = lint_files(files, form_exists=PRESENT_FORMS.__contains__, connectors=CONNECTORS)
    assert [i.file for i in issues] == ["missing_form.bpmn", "timer_unquoted.bpmn"]


# -- 1. safe XML parse -----------------------------------------------------------------------

def test_malformed_xml_is_located():
    content = b'<?xml version="1.0"?>\n<bpmn:definitions>\n  <unclosed>\n</bpmn:definitions>\n'
    [found] = lint("broken.bpmn", content)
    assert found.file == "broken.bpmn"
    assert found.line in (2, 3, 4)
    assert found.element_id is None
    assert found.message.startswith("not well-formed XML")


REFUSALS = ("DOCTYPE declarations are not allowed", "not well-formed XML: ")


@pytest.mark.parametrize("use", ['<bpmn:documentation>&xxe;</bpmn:documentation>',
                                 '<bpmn:process id="&xxe;" isExecutable="true"/>'])
def test_xxe_payload_is_refused_without_reading_the_file(tmp_path, use):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CUSTOMER-LIST")
    content = (
        f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        f'id="d" targetNamespace="x">{use}</bpmn:definitions>\n'
    ).encode()
    [found] = lint("xxe.bpmn", content)
    assert (found.file, found.element_id) == ("xxe.bpmn", None)
    assert found.message.startswith(REFUSALS)
    assert "TOP-SECRET" not in repr(found)


def test_billion_laughs_is_refused_quickly():
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    content = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [' + "".join(entities) + "]>\n"
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="d" targetNamespace="x"><bpmn:documentation>&lol9;</bpmn:documentation>'
        "</bpmn:definitions>\n"
    ).encode()
    started = time.monotonic()
    issues = lint("laughs.bpmn", content)
    assert time.monotonic() - started < 2
    [found] = issues
    assert (found.file, found.element_id) == ("laughs.bpmn", None)
    assert found.message.startswith(REFUSALS)
    assert "lollol" not in found.message


def test_file_over_5_mb_is_refused():
    content = DATA.joinpath("clean.bpmn").read_bytes()
    content += b"<!--" + b"x" * MAX_XML_BYTES + b"-->\n"
    assert lint("huge.bpmn", content) == [
        Issue("huge.bpmn", None, None, "file is larger than 5 MB")]


# -- 2. XML schema ---------------------------------------------------------------------------

def test_bpmn_schema_violations_are_located():
    name = "schema_invalid.bpmn"
    issues = lint(name)
    assert issues == [
        issue(name, 'colour="red"', "call_back", "XML schema violation: Element 'bpmn:task', "
              "attribute 'colour': The attribute 'colour' is not allowed."),
        Issue(name, line_of(name, "<bpmn:approval/>"), "schema_process", issues[1].message),
    ]
    assert issues[1].message.startswith(
        "XML schema violation: Element 'bpmn:approval': This element is not expected.")


def test_spiffworkflow_extensions_are_validated():
    content = DATA.joinpath("connectors.bpmn").read_bytes().replace(
        b'<spiffworkflow:serviceTaskOperator id="ftp_upload">',
        b'<spiffworkflow:serviceTaskOperator id="ftp_upload" timeout="5">')
    issues = lint("connectors.bpmn", content)
    assert any(i.message == "XML schema violation: Element 'spiffworkflow:serviceTaskOperator', "
               "attribute 'timeout': The attribute 'timeout' is not allowed." for i in issues)


def test_dmn_schema_violations_are_located():
    name = "schema_invalid.dmn"
    issues = lint(name)
    assert issues == [issue(name, 'hitPolicy="SOMETIMES"', "priority_table", issues[0].message)]
    assert issues[0].message.startswith(
        "XML schema violation: Element 'dmn:decisionTable', attribute 'hitPolicy': ")
    assert "'SOMETIMES'" in issues[0].message


# -- 3. timers -------------------------------------------------------------------------------

TIMER_MESSAGE = ("Timer timeDuration {0} is an unquoted ISO 8601 value; timer expressions are "
                 'Python expressions, so quote it: "{0}"')


def test_unquoted_timer_duration_is_reported():
    name = "timer_unquoted.bpmn"
    assert lint(name) == [
        issue(name, "<bpmn:timeDuration>", "wait_for_reply", TIMER_MESSAGE.format("PT2H"))]


@pytest.mark.parametrize("value", ["P1D", "R3/PT10M", "2026-01-01T10:00:00", "P1Y2M3DT4H5M6S",
                                   "R/2026-01-01T09:00:00Z/P1W", "2026-01-01"])
def test_other_unquoted_iso_values_are_reported(value):
    name = "timer_unquoted.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b">PT2H<", f">{value}<".encode())
    assert lint(name, content) == [
        issue(name, "<bpmn:timeDuration>", "wait_for_reply", TIMER_MESSAGE.format(value))]


@pytest.mark.parametrize("value", ['"PT2H"', "'P1D'", "reminder_delay", 'f"PT{hours}H"'])
def test_timer_python_expressions_are_accepted(value):
    name = "timer_unquoted.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b">PT2H<", f">{value}<".encode())
    assert lint(name, content) == []


def test_timer_expression_is_checked_by_the_sandbox():
    name = "timer_unquoted.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b">PT2H<", b">__import__('os')<")
    expected = check_source("__import__('os')", "eval")
    assert expected
    assert lint(name, content) == [
        issue(name, "<bpmn:timeDuration>", "wait_for_reply", f"Timer timeDuration: {message}")
        for message in expected]


def test_empty_timer_is_reported():
    name = "timer_unquoted.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b">PT2H<", b"> <")
    assert lint(name, content) == [issue(
        name, "<bpmn:timeDuration>", "wait_for_reply",
        'Timer timeDuration is empty; enter a Python expression such as "PT2H"')]


# -- 4. forms --------------------------------------------------------------------------------

def test_missing_form_file_is_reported():
    name = "missing_form.bpmn"
    assert lint(name) == [issue(
        name, "review-schema.json", "review_case",
        'Form file "review-schema.json" (formJsonSchemaFilename) was not found: upload it '
        "together with the model or deploy it first")]


def test_form_lookup_goes_through_form_exists():
    asked = []
    lint_files({"missing_form.bpmn": DATA.joinpath("missing_form.bpmn").read_bytes()},
               form_exists=lambda n: asked.append(n) or True, connectors=CONNECTORS)
    assert sorted(asked) == ["review-schema.json", "review-uischema.json"]


# -- 5. connectors ---------------------------------------------------------------------------

def test_unknown_and_missing_connectors_are_reported():
    name = "connectors.bpmn"
    assert lint(name) == [
        issue(name, 'serviceTaskOperator id="ftp_upload"', "upload_invoice",
              f'Unknown connector "ftp_upload"; {AVAILABLE}'),
        issue(name, '<bpmn:serviceTask id="sync_crm"', "sync_crm",
              f"Service task has no connector (spiffworkflow:serviceTaskOperator); {AVAILABLE}"),
    ]


# -- 6. gateways -----------------------------------------------------------------------------

def unguarded(flow: str, kind: str, gateway: str) -> str:
    return (f'Sequence flow "{flow}" leaves {kind} gateway "{gateway}" without a condition and '
            "is not its default flow; add a conditionExpression or make it the gateway's default")


def test_unguarded_gateway_flows_are_reported():
    name = "gateways.bpmn"
    assert lint(name) == [
        issue(name, 'id="flow_low"', "flow_low", unguarded("flow_low", "exclusive", "triage")),
        issue(name, 'id="flow_email"', "flow_email",
              unguarded("flow_email", "inclusive", "channels")),
        issue(name, 'id="flow_sms"', "flow_sms", unguarded("flow_sms", "inclusive", "channels")),
    ]


# -- 7. scripts ------------------------------------------------------------------------------

@pytest.mark.parametrize(("needle", "element_id", "label", "source", "mode"), [
    ("<bpmn:script>", "score_lead", "Script", "score = = 10", "exec"),
    ("<spiffworkflow:preScript>", "enrich_lead", "Pre-script", "import os", "exec"),
    ("<spiffworkflow:postScript>", "enrich_lead", "Post-script", "enriched = (", "exec"),
    ("<bpmn:conditionExpression>", "flow_hot", "Condition", "score >", "eval"),
])
def test_script_errors_are_located(needle, element_id, label, source, mode):
    name = "scripts.bpmn"
    expected = check_source(source, mode)
    assert expected
    assert issue(name, needle, element_id, f"{label}: {expected[0]}") in lint(name)


def test_script_fixture_has_only_the_script_errors():
    assert len(lint("scripts.bpmn")) == 4


# -- 8. executable ---------------------------------------------------------------------------

def test_file_without_executable_process_is_reported():
    name = "not_executable.bpmn"
    assert lint(name) == [issue(
        name, '<bpmn:process id="intake_sketch"', "intake_sketch",
        'No process is executable ("intake_sketch", "escalation_sketch"); '
        'set isExecutable="true" on the process to deploy')]


# -- robustness ------------------------------------------------------------------------------

ODD_DOCUMENTS = [
    b'<bpmn:exclusiveGateway xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="g"/>',
    b"<unrelated><root/></unrelated>",
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    b'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core">'
    b'<bpmn:process isExecutable="true"><bpmn:serviceTask><bpmn:extensionElements>'
    b"<spiffworkflow:serviceTaskOperator/></bpmn:extensionElements></bpmn:serviceTask>"
    b"<bpmn:userTask><bpmn:extensionElements><spiffworkflow:properties>"
    b'<spiffworkflow:property name="formJsonSchemaFilename"/></spiffworkflow:properties>'
    b"</bpmn:extensionElements></bpmn:userTask><bpmn:exclusiveGateway/>"
    b"<bpmn:timerEventDefinition><bpmn:timeCycle/></bpmn:timerEventDefinition>"
    b"</bpmn:process></bpmn:definitions>",
]


@pytest.mark.parametrize("content", ODD_DOCUMENTS)
def test_odd_documents_give_issues_not_exceptions(content):
    issues = lint("odd.bpmn", content)
    assert issues
    assert all(i.file == "odd.bpmn" and i.message for i in issues)


def test_deeply_nested_expression_is_an_issue_not_a_crash():
    name = "timer_unquoted.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b">PT2H<", b">x" + b".a" * 100_000 + b"<")
    [found] = lint(name, content)
    expected_line = line_of(name, "<bpmn:timeDuration>")
    assert (found.element_id, found.line) == ("wait_for_reply", expected_line)
    assert found.message.startswith("Timer timeDuration: ")
