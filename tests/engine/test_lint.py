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


# -- 9. every expression evaluated at run time ------------------------------------------------

IMPORT = "__import__('os').getcwd()"
IMPORT_ERRORS = check_source(IMPORT, "eval")
MRO = "().__class__.__mro__"


def xml_escape(text: str) -> bytes:
    from xml.sax.saxutils import escape
    return escape(text, {'"': "&quot;"}).encode()


def dmn_with(needle: bytes, text: str) -> bytes:
    content = DATA.joinpath("clean.dmn").read_bytes()
    assert content.count(needle) == 1
    return content.replace(needle, b"<text>" + xml_escape(text) + b"</text>")


@pytest.mark.parametrize("expression", [IMPORT, MRO, "total +"])
def test_dmn_output_entry_is_checked(expression):
    name = "clean.dmn"
    expected = check_source(expression, "eval")
    assert expected
    assert lint(name, dmn_with(b'<text>"high"</text>', expression)) == [
        Issue(name, line_of(name, '<text>"high"</text>'), "rule_vip_output",
              f"Output entry of rule rule_vip: {message}") for message in expected]


@pytest.mark.parametrize("entry", [IMPORT, MRO, "< 20 and", "? > __import__('os')"])
def test_dmn_input_entry_is_checked(entry):
    name = "clean.dmn"
    issues = lint(name, dmn_with(b"<text>True</text>", entry))
    assert issues
    assert {(i.file, i.line, i.element_id) for i in issues} == {
        (name, line_of(name, "<text>True</text>"), "rule_vip_input")}
    assert all(i.message.startswith("Input entry of rule rule_vip: Line 1: ") for i in issues)


@pytest.mark.parametrize("entry", ["-", "", "  ", '"gold"', "<= 20", "> 3", "< 20 and vip",
                                   ' in ("a", "b")', "? > 3", '"why?"', "1 < ? < 5", "!= None",
                                   " not in [1, 2]", '? in ("a", "b")'])
def test_dmn_input_entries_the_engine_accepts_are_accepted(entry):
    assert lint("clean.dmn", dmn_with(b"<text>True</text>", entry)) == []


@pytest.mark.parametrize("entry", ['in ("a", "b")', "not in [1, 2]"])
def test_dmn_input_entry_glued_to_the_input_expression_is_reported(entry):
    """DMNEngine evaluates `vip` + `in (...)` as `vipin (...)`: a NameError at run time."""
    name = "clean.dmn"
    assert lint(name, dmn_with(b"<text>True</text>", entry)) == [Issue(
        name, line_of(name, "<text>True</text>"), "rule_vip_input",
        f"Input entry of rule rule_vip: {entry!r} is appended to the input expression as "
        f"{'vip' + entry!r}; start the entry with a space or write it with ? for the input "
        f"('? {entry}')")]


def test_dmn_comparison_entry_is_checked_joined_to_its_input_expression():
    name = "clean.dmn"
    content = dmn_with(b"<text>vip</text>", "vip.__class__").replace(
        b"<text>True</text>", b"<text>&lt;= 20</text>")
    issues = lint(name, content)
    assert {i.element_id for i in issues} == {"input_vip_expression", "rule_vip_input"}
    [entry] = [i for i in issues if i.element_id == "rule_vip_input"]
    assert entry.message.startswith("Input entry of rule rule_vip: Line 1: ")
    assert "__class__" in entry.message


def test_dmn_input_expression_is_checked():
    name = "clean.dmn"
    issues = lint(name, dmn_with(b"<text>vip</text>", MRO))
    assert issues and all(i.element_id == "input_vip_expression" for i in issues)
    assert all(i.line == line_of(name, "<text>vip</text>") for i in issues)
    assert all(i.message.startswith("Input expression: ") for i in issues)


def test_dmn_input_placeholders_are_found_like_the_dmn_engine_does():
    import random
    import re

    from app.engine.lint.dmn import _mark_input_placeholders

    spiff = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')
    rng = random.Random(7)
    for _ in range(3000):
        entry = "".join(rng.choice("?'\"a ") for _ in range(rng.randint(0, 12)))
        assert _mark_input_placeholders(entry) == spiff.sub("dmninputexpr", entry), entry
    started = time.monotonic()
    _mark_input_placeholders("?" * 200_000)
    assert time.monotonic() - started < 2


def test_dmn_entries_are_checked_in_dmn_1_1_files_too():
    content = dmn_with(b'<text>"high"</text>', IMPORT).replace(
        b"https://www.omg.org/spec/DMN/20191111/MODEL/",
        b"http://www.omg.org/spec/DMN/20151101/dmn.xsd")
    assert [i.element_id for i in lint("old.dmn", content)] == ["rule_vip_output"] * len(
        IMPORT_ERRORS)


CLEAN_PARAMETER = 'value="&quot;am@example.com&quot;"'


@pytest.mark.parametrize("value", [IMPORT, "url +", "__import__('os')"])
def test_service_task_parameters_are_checked(value):
    name = "clean.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(
        CLEAN_PARAMETER.encode(), b'value="' + xml_escape(value) + b'"')
    expected = check_source(value, "eval")
    assert expected
    assert lint(name, content) == [
        issue(name, CLEAN_PARAMETER, "notify", f'Service parameter "to": {message}')
        for message in expected]


def test_empty_service_task_parameter_is_reported():
    name = "clean.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(CLEAN_PARAMETER.encode(), b'value=" "')
    assert lint(name, content) == [issue(
        name, CLEAN_PARAMETER, "notify", 'Service parameter "to" has an empty value; enter a '
        'Python expression such as "text" (quoted) or a variable name')]


FORM_PROPERTY = ('<spiffworkflow:property name="formUiSchemaFilename" '
                 'value="contact-uischema.json"/>')


def with_property(name: str, value: str) -> bytes:
    content = DATA.joinpath("clean.bpmn").read_bytes()
    prop = f'<spiffworkflow:property name="{name}" value="'.encode() + xml_escape(value) + b'"/>'
    return content.replace(FORM_PROPERTY.encode(), FORM_PROPERTY.encode() + prop)


@pytest.mark.parametrize("prop", ["priority", "dueAt", "candidateGroupsExpression",
                                  "assigneeExpression", "instructionsExpression",
                                  "formEnum.reason"])
@pytest.mark.parametrize("value", [IMPORT, "1 +"])
def test_task_property_expressions_are_checked(prop, value):
    name = "clean.bpmn"
    expected = check_source(value, "eval")
    assert lint(name, with_property(prop, value)) == [
        issue(name, FORM_PROPERTY, "collect_contact", f'Property "{prop}": {message}')
        for message in expected]


@pytest.mark.parametrize(("prop", "value"), [
    ("priority", "1 if vip else 3"), ("dueAt", 'f"2026-01-0{day}T10:00:00"'),
    ("candidateGroups", "sales, managers"), ("formEnum.reason", "reasons"),
    ("notes", "free text, not an expression ("), ("dueAt", "")])
def test_task_property_expressions_that_compile_and_other_properties_pass(prop, value):
    assert lint("clean.bpmn", with_property(prop, value)) == []


MESSAGING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_messaging" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="collaboration">
    <bpmn:participant id="participant" processRef="messaging_process"/>
    <bpmn:correlationKey id="order_key" name="order_key">
      <bpmn:correlationPropertyRef>order_id</bpmn:correlationPropertyRef>
    </bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:message id="order_paid" name="order_paid">
    <bpmn:extensionElements>
      <spiffworkflow:messagePayload>{PAYLOAD}</spiffworkflow:messagePayload>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:correlationProperty id="order_id" name="order_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="order_paid">
      <bpmn:formalExpression>{RETRIEVAL}</bpmn:formalExpression>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:process id="messaging_process" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="flow_start_review" sourceRef="start" targetRef="review_lines"/>
    <bpmn:userTask id="review_lines" name="Review lines">
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopCardinality>{CARDINALITY}</bpmn:loopCardinality>
        <bpmn:completionCondition>{COMPLETION}</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_review_wait" sourceRef="review_lines" targetRef="wait_paid"/>
    <bpmn:intermediateCatchEvent id="wait_paid" name="Wait for payment">
      <bpmn:messageEventDefinition id="wait_paid_message" messageRef="order_paid"/>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="flow_wait_end" sourceRef="wait_paid" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
MESSAGING_CLEAN = {"PAYLOAD": '{"paid": True}', "RETRIEVAL": "order_id",
                   "CARDINALITY": "len(lines)", "COMPLETION": "done"}


def messaging(**values) -> bytes:
    text = MESSAGING
    for key, value in {**MESSAGING_CLEAN, **values}.items():
        text = text.replace("{" + key + "}", value)
    return text.encode()


def messaging_line(needle: str) -> int:
    [line] = [n for n, text in enumerate(MESSAGING.splitlines(), 1) if needle in text]
    return line


def test_messaging_fixture_is_clean():
    assert lint("messaging.bpmn", messaging()) == []


@pytest.mark.parametrize(("key", "needle", "element_id", "label"), [
    ("PAYLOAD", "{PAYLOAD}", "order_paid", "Message payload"),
    ("RETRIEVAL", "{RETRIEVAL}", "order_id", "Correlation retrieval expression"),
    ("CARDINALITY", "{CARDINALITY}", "review_lines", "Loop cardinality"),
    ("COMPLETION", "{COMPLETION}", "review_lines", "Completion condition"),
])
@pytest.mark.parametrize("value", [IMPORT, "1 +"])
def test_messaging_and_loop_expressions_are_checked(key, needle, element_id, label, value):
    expected = check_source(value, "eval")
    assert lint("messaging.bpmn", messaging(**{key: xml_escape(value).decode()})) == [
        Issue("messaging.bpmn", messaging_line(needle), element_id, f"{label}: {message}")
        for message in expected]


def test_retrieval_expression_as_message_path_is_checked():
    content = messaging(RETRIEVAL=MRO).replace(b"formalExpression>", b"messagePath>")
    issues = lint("messaging.bpmn", content)
    assert issues and all(i.element_id == "order_id" for i in issues)
    assert all(i.message.startswith("Correlation retrieval expression: ") for i in issues)


# -- 10. duplicate ids and compiler messages ---------------------------------------------------

def test_duplicate_id_names_the_first_use():
    name = "clean.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(
        b'<bpmn:endEvent id="end_vip"/>', b'<bpmn:endEvent id="notify"/>').replace(
        b'targetRef="end_vip"', b'targetRef="notify"')
    first = line_of(name, '<bpmn:serviceTask id="notify"')
    issues = lint(name, content)
    assert issues == [Issue(name, line_of(name, '<bpmn:endEvent id="end_vip"/>'), "notify",
                            f"duplicate id 'notify' (also used at line {first})")]
    assert "xs:ID" not in repr(issues)


def test_malformed_id_keeps_the_schema_message():
    name = "clean.bpmn"
    content = DATA.joinpath(name).read_bytes().replace(b'id="end_vip"', b'id="1 end"').replace(
        b'targetRef="end_vip"', b'targetRef="1 end"')
    assert any("xs:ID" in i.message for i in lint(name, content))


DATA_STORE = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="Definitions_store" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:dataStore id="ledger_store" name="Ledger&#10;System"/>
  <bpmn:process id="store_process" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="flow_start_end" sourceRef="start" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_data_store_without_implementation_names_the_element():
    from app.engine.compiler import ModelInvalid

    with pytest.raises(ModelInvalid) as refused:
        compile_files({"store.bpmn": DATA_STORE})
    [found] = refused.value.issues
    assert (found.file, found.line, found.element_id) == ("store.bpmn", 4, "ledger_store")
    assert "has no implementation" in found.message


def test_unresolvable_data_reference_is_named_without_object_reprs():
    from app.engine.compiler import ModelInvalid

    content = DATA.joinpath("clean.bpmn").read_bytes().replace(
        b'<bpmn:scriptTask id="summarize" name="Summarize" scriptFormat="python">',
        b'<bpmn:scriptTask id="summarize" name="Summarize" scriptFormat="python">'
        b'\n      <bpmn:dataInputAssociation id="summarize_input">'
        b"<bpmn:sourceRef>missing_ledger</bpmn:sourceRef></bpmn:dataInputAssociation>")
    with pytest.raises(ModelInvalid) as refused:
        compile_files({"clean.bpmn": content})
    [found] = refused.value.issues
    assert found.element_id == "summarize"
    assert found.line == line_of("clean.bpmn", '<bpmn:scriptTask id="summarize"')
    assert " at 0x" not in found.message and "<Element" not in found.message
    assert '"missing_ledger"' in found.message


def test_messages_never_show_object_reprs():
    from app.engine.compiler import _readable

    raw = ("Cannot use <Element {http://www.omg.org/spec/BPMN/20100524/MODEL}sourceRef at "
           "0x7f48943c4e40> with <SpiffWorkflow.bpmn.specs.Thing object at 0x7f00aa>, "
           "<Element plain at 0x7f01> and <function helper at 0x7f02>")
    assert _readable(raw, None) == (
        "Cannot use bpmn:sourceRef with Thing, plain and function helper")


# -- 11. encodings -----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "UTF-8"])
def test_models_in_any_declared_encoding_compile_to_utf8_text(encoding):
    text = DATA.joinpath("clean.bpmn").read_text().replace(
        'encoding="UTF-8"', f'encoding="{encoding}"').replace(
        'name="Collect contact"', 'name="Recoger contacto de la compañía"')
    [compiled] = compile_files({"clean.bpmn": text.encode(encoding)})
    assert "compañía" in compiled.bpmn_xml
    assert compiled.bpmn_xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    [again] = compile_files({"clean.bpmn": compiled.bpmn_xml.encode()})
    assert again.bpmn_xml == compiled.bpmn_xml
