"""Pre-deploy lint of BPMN/DMN models: every problem located by file, line and element id.

The same checks back `clientconnect lint PATH...` and the 422 body of a refused deploy.
An issue's `line` is the line of the XML element that holds the problem (for a script,
its <script> element); `element_id` names the flow element a designer would select (the
task, event, gateway or sequence flow), or for schema errors the nearest element with an id.
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .compiler import FORM_PROPERTIES, Issue
from .xmlsafe import XmlRejected, parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
PREFIXES = {
    BPMN_NS: "bpmn",
    SPIFF_NS: "spiffworkflow",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "dmn",
    "http://www.omg.org/spec/DMN/20180521/MODEL/": "dmn",
    "https://www.omg.org/spec/DMN/20191111/MODEL/": "dmn",
}
CONTAINERS = {f"{{{BPMN_NS}}}{name}" for name in
              ("process", "subProcess", "transaction", "adHocSubProcess")}
MAX_SCHEMA_ERRORS = 50

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = (rf"P(?=[\dT])(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
             rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?")
_DATE = r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_CYCLE = rf"R\d*(?:/(?:{_DURATION}|{_DATE})){{1,2}}"
UNQUOTED_ISO = re.compile(rf"{_DURATION}|{_DATE}|{_CYCLE}")

_SCHEMA_LOCK = threading.Lock()


def lint_files(files: dict[str, bytes], *, form_exists: Callable[[str], bool],
               connectors: Collection[str]) -> list[Issue]:
    """Every problem in the .bpmn and .dmn files of `files`; other files (forms) are skipped.

    `form_exists(name)` tells whether a form file is available (uploaded or deployed);
    `connectors` are the service task operators the workers can run.
    """
    available = frozenset(connectors)
    issues: list[Issue] = []
    for name, content in files.items():
        if _kind(name):
            issues.extend(_lint_file(name, content, form_exists, available))
    return issues


def _kind(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return suffix[1:] if suffix in (".bpmn", ".dmn") else None


def _lint_file(name, content, form_exists, connectors) -> list[Issue]:
    try:
        root = parse_xml(content, name)
    except XmlRejected as exc:
        return [Issue(name, exc.line, None, exc.message)]
    if _kind(name) == "dmn":
        issues = _schema_issues(name, root, _dmn_namespace(root))
        issues.extend(_dmn_issues(name, root))
        return sorted(issues, key=lambda issue: issue.line or 0)
    ctx = _Context(name, root, form_exists, connectors)
    issues = _schema_issues(name, _for_schema(root), "bpmn")
    issues.extend(itertools.chain.from_iterable(check(ctx) for check in BPMN_CHECKS))
    return sorted(issues, key=lambda issue: issue.line or 0)


@dataclass(frozen=True)
class _Context:
    name: str
    root: etree._Element
    form_exists: Callable[[str], bool]
    connectors: frozenset[str]

    def issue(self, node: etree._Element, message: str) -> Issue:
        return Issue(self.name, node.sourceline, _flow_element_id(node), message)

    def available(self) -> str:
        return ", ".join(sorted(self.connectors)) or "none"


def _xp(node: etree._Element, path: str, **variables) -> list:
    return node.xpath(path, namespaces=NS, **variables)


def _text(node: etree._Element) -> str:
    return (node.text or "").strip()


def _self_and_ancestors(node: etree._Element) -> Iterator[etree._Element]:
    return itertools.chain([node], node.iterancestors())


def _nearest_id(node: etree._Element) -> str | None:
    return next((el.get("id") for el in _self_and_ancestors(node) if el.get("id")), None)


def _flow_element_id(node: etree._Element) -> str | None:
    """The id of the flow element (direct child of a process or sub-process) holding `node`."""
    for element in _self_and_ancestors(node):
        parent = element.getparent()
        if parent is not None and parent.tag in CONTAINERS:
            return element.get("id")
    return _nearest_id(node)


# -- XML schema ------------------------------------------------------------------------------

def _dmn_namespace(root: etree._Element) -> str:
    return etree.QName(root).namespace or ""


def _for_schema(root: etree._Element) -> etree._Element:
    """bpmn-js writes formalExpression where the XSD wants messagePath; Spiff accepts it too."""
    path = ".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression"
    if not _xp(root, path):
        return root
    doc = copy.deepcopy(root)
    for expr in _xp(doc, path):
        expr.tag = f"{{{BPMN_NS}}}messagePath"
    return doc


def _schema_issues(name: str, root: etree._Element, kind: str) -> list[Issue]:
    errors = _validate(root, kind)
    if not errors:
        return []
    locate, first_use = _locator(root), _first_use_of_ids(root)
    return [Issue(name, e.line, locate(e.line), _duplicate_id_message(e, first_use)
                  or _schema_message(e.message)) for e in errors]


_BAD_ID = re.compile(r"attribute 'id': '(?P<id>.*)' is not a valid value of the atomic type "
                     r"'xs:ID'")


def _first_use_of_ids(root: etree._Element) -> dict[str, int | None]:
    """The line of the first element using each id (the one a duplicate collides with)."""
    first: dict[str, int | None] = {}
    for element in root.iter(etree.Element):
        value = element.get("id")
        if value is not None:
            first.setdefault(value, element.sourceline)
    return first


def _duplicate_id_message(error, first_use: dict[str, int | None]) -> str | None:
    """libxml2 reports a repeated xs:ID as an invalid value; say what it is instead."""
    match = _BAD_ID.search(error.message)
    if not match or match.group("id") not in first_use:
        return None
    value, line = match.group("id"), first_use[match.group("id")]
    if line is None or line >= error.line:
        return None  # the first use itself: the value is malformed, not repeated
    return f"duplicate id '{value}' (also used at line {line})"


def _validate(root: etree._Element, kind: str) -> list:
    with _SCHEMA_LOCK:
        schema = _schema(kind)
        if schema is None or schema.validate(root):
            return []
        return list(schema.error_log)[:MAX_SCHEMA_ERRORS]


@functools.cache
def _schema(kind: str) -> etree.XMLSchema | None:
    """The validator for "bpmn" or for a DMN namespace (None when Spiff ships no XSD for it)."""
    doc = _bpmn_xsd() if kind == "bpmn" else _dmn_xsd(kind)
    return None if doc is None else etree.XMLSchema(doc)


def _load_xsd(path: str) -> etree._ElementTree:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.parse(path, parser)


def _bpmn_xsd() -> etree._ElementTree:
    from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH
    from SpiffWorkflow.spiff.parser.process import SPIFF_XSD

    doc = _load_xsd(XSD_PATH)
    spiff = etree.Element(f"{{{XSD_NS}}}import", namespace=SPIFF_NS,
                          schemaLocation=Path(SPIFF_XSD).as_uri())
    doc.getroot().insert(0, spiff)
    return doc


def _dmn_xsd(namespace: str) -> etree._ElementTree | None:
    from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS

    path = SCHEMAS.get(namespace)
    return _load_xsd(path) if path and Path(path).is_file() else None


def _locator(root: etree._Element) -> Callable[[int], str | None]:
    """Map a line to the id of the element starting there (or just before), or an ancestor's."""
    elements = list(root.iter(etree.Element))
    lines = [el.sourceline or 0 for el in elements]

    def locate(line: int) -> str | None:
        index = bisect.bisect_left(lines, line)
        if index == len(lines) or lines[index] != line:
            index -= 1
        return _nearest_id(elements[index]) if index >= 0 else None

    return locate


def _schema_message(message: str) -> str:
    def prefixed(match: re.Match) -> str:
        prefix = PREFIXES.get(match.group(1))
        return f"{prefix}:" if prefix else match.group(0)

    return "XML schema violation: " + re.sub(r"\{([^}]*)\}", prefixed, message)


# -- BPMN checks -----------------------------------------------------------------------------

def _check_executable(ctx: _Context) -> list[Issue]:
    processes = _xp(ctx.root, "bpmn:process")
    if any(p.get("isExecutable") == "true" for p in processes):
        return []
    if not processes:
        return [Issue(ctx.name, ctx.root.sourceline, None, "The file defines no process")]
    ids = ", ".join(f'"{p.get("id")}"' for p in processes)
    return [ctx.issue(processes[0], f"No process is executable ({ids}); "
                                    f'set isExecutable="true" on the process to deploy')]


def _check_timers(ctx: _Context) -> Iterator[Issue]:
    parts = "bpmn:timeDuration | bpmn:timeDate | bpmn:timeCycle"
    for definition in _xp(ctx.root, "//bpmn:timerEventDefinition"):
        for node in _xp(definition, parts):
            yield from _timer_issues(ctx, node)


def _timer_issues(ctx: _Context, node: etree._Element) -> list[Issue]:
    label, text = f"Timer {etree.QName(node).localname}", _text(node)
    if not text:
        return [ctx.issue(node, f'{label} is empty; enter a Python expression such as "PT2H"')]
    if UNQUOTED_ISO.fullmatch(text):
        return [ctx.issue(node, f"{label} {text} is an unquoted ISO 8601 value; timer "
                                f'expressions are Python expressions, so quote it: "{text}"')]
    return _source_issues(ctx, node, label, "eval")


def _check_scripts(ctx: _Context) -> Iterator[Issue]:
    for node in _xp(ctx.root, "//bpmn:scriptTask/bpmn:script"):
        yield from _source_issues(ctx, node, "Script", "exec")
    for name, label in (("preScript", "Pre-script"), ("postScript", "Post-script")):
        for node in _xp(ctx.root, f"//bpmn:extensionElements/spiffworkflow:{name}"):
            yield from _source_issues(ctx, node, label, "exec")
    for node in _xp(ctx.root, "//bpmn:sequenceFlow/bpmn:conditionExpression"):
        yield from _source_issues(ctx, node, "Condition", "eval")


def _source_issues(ctx: _Context, node: etree._Element, label: str, mode: str) -> list[Issue]:
    if not _text(node):
        return []
    return [ctx.issue(node, f"{label}: {message}") for message in _check_source(node.text, mode)]


def _check_source(source: str, mode: str) -> list[str]:
    from .sandbox import check_source

    try:
        return check_source(source, mode)
    except (RecursionError, MemoryError):
        return ["the code is nested too deeply to be compiled"]


def _check_forms(ctx: _Context) -> Iterator[Issue]:
    path = "//bpmn:userTask/bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
    for prop in _xp(ctx.root, path):
        if prop.get("name") in FORM_PROPERTIES:
            yield from _form_issues(ctx, prop)


def _form_issues(ctx: _Context, prop: etree._Element) -> list[Issue]:
    key, value = prop.get("name"), prop.get("value") or ""
    if not value.strip():
        return [ctx.issue(prop, f"Form property {key} has no file name")]
    if ctx.form_exists(value):
        return []
    return [ctx.issue(prop, f'Form file "{value}" ({key}) was not found: upload it together '
                            f"with the model or deploy it first")]


def _check_connectors(ctx: _Context) -> Iterator[Issue]:
    for task in _xp(ctx.root, "//bpmn:serviceTask"):
        operator = _xp(task, "bpmn:extensionElements/spiffworkflow:serviceTaskOperator")
        yield from _connector_issues(ctx, operator[0]) if operator else [_no_connector(ctx, task)]


def _no_connector(ctx: _Context, task: etree._Element) -> Issue:
    return ctx.issue(task, "Service task has no connector (spiffworkflow:serviceTaskOperator); "
                           f"available connectors: {ctx.available()}")


def _connector_issues(ctx: _Context, operator: etree._Element) -> list[Issue]:
    name = operator.get("id") or ""
    if name in ctx.connectors:
        return []
    return [ctx.issue(operator, f'Unknown connector "{name}"; '
                                f"available connectors: {ctx.available()}")]


def _check_gateways(ctx: _Context) -> Iterator[Issue]:
    for gateway in _xp(ctx.root, ".//bpmn:exclusiveGateway[@id] | .//bpmn:inclusiveGateway[@id]"):
        flows = _xp(gateway.getparent(), "bpmn:sequenceFlow[@sourceRef=$id]", id=gateway.get("id"))
        if len(flows) >= 2:
            yield from (_unguarded(ctx, gateway, flow) for flow in flows
                        if _is_unguarded(gateway, flow))


def _is_unguarded(gateway: etree._Element, flow: etree._Element) -> bool:
    conditions = _xp(flow, "bpmn:conditionExpression")
    return flow.get("id") != gateway.get("default") and not any(map(_text, conditions))


def _unguarded(ctx: _Context, gateway: etree._Element, flow: etree._Element) -> Issue:
    kind = etree.QName(gateway).localname.removesuffix("Gateway")
    return ctx.issue(flow, f'Sequence flow "{flow.get("id")}" leaves {kind} gateway '
                           f'"{gateway.get("id")}" without a condition and is not its default '
                           "flow; add a conditionExpression or make it the gateway's default")


EXPRESSION_PROPERTIES = ("priority", "dueAt", "candidateGroupsExpression", "assigneeExpression",
                         "instructionsExpression")
"""spiffworkflow:property values of user/manual tasks evaluated on the task's data at run time
(together with every `formEnum.<field>`)."""

_EXPRESSIONS = (
    # (XPath of the element whose text is one Python expression, label)
    ("//bpmn:multiInstanceLoopCharacteristics/bpmn:loopCardinality", "Loop cardinality"),
    ("//bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition", "Completion condition"),
    ("//bpmn:standardLoopCharacteristics/bpmn:loopCondition", "Loop condition"),
    ("//bpmn:adHocSubProcess/bpmn:completionCondition", "Completion condition"),
    ("//bpmn:conditionalEventDefinition/bpmn:condition", "Event condition"),
    ("//bpmn:correlationPropertyRetrievalExpression/bpmn:messagePath"
     " | //bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression",
     "Correlation retrieval expression"),
    ("//spiffworkflow:processVariableCorrelation/spiffworkflow:expression",
     "Correlation expression"),
    ("//spiffworkflow:messagePayload", "Message payload"),
)


def _check_expressions(ctx: _Context) -> Iterator[Issue]:
    """Expressions the engine evaluates at run time, besides scripts, conditions and timers."""
    for path, label in _EXPRESSIONS:
        for node in _xp(ctx.root, path):
            yield from _source_issues(ctx, node, label, "eval")


def _check_service_parameters(ctx: _Context) -> Iterator[Issue]:
    path = "//spiffworkflow:serviceTaskOperator/spiffworkflow:parameters/spiffworkflow:parameter"
    for param in _xp(ctx.root, path):
        value = param.get("value")
        if value is None:
            continue  # SpiffWorkflow ignores a parameter without a value
        label = f'Service parameter "{param.get("id") or ""}"'
        if not value.strip():
            yield ctx.issue(param, f"{label} has an empty value; enter a Python expression "
                                   'such as "text" (quoted) or a variable name')
            continue
        yield from (ctx.issue(param, f"{label}: {message}")
                    for message in _check_source(value, "eval"))


def _check_task_properties(ctx: _Context) -> Iterator[Issue]:
    path = ("//bpmn:userTask/bpmn:extensionElements/spiffworkflow:properties/"
            "spiffworkflow:property | //bpmn:manualTask/bpmn:extensionElements/"
            "spiffworkflow:properties/spiffworkflow:property")
    for prop in _xp(ctx.root, path):
        name, value = prop.get("name") or "", prop.get("value") or ""
        if (name in EXPRESSION_PROPERTIES or name.startswith("formEnum.")) and value.strip():
            yield from (ctx.issue(prop, f'Property "{name}": {message}')
                        for message in _check_source(value, "eval"))


BPMN_CHECKS: tuple[Callable[[_Context], Iterable[Issue]], ...] = (
    _check_executable,
    _check_timers,
    _check_scripts,
    _check_expressions,
    _check_service_parameters,
    _check_task_properties,
    _check_forms,
    _check_connectors,
    _check_gateways,
)


# -- DMN checks ------------------------------------------------------------------------------

def _dmn_issues(name: str, root: etree._Element) -> list[Issue]:
    """Input expressions, input entries and output entries of every decision table.

    Input entries are checked as SpiffWorkflow's DMNEngine evaluates them: `-` or empty
    matches anything; with `?` the entry is evaluated with `?` standing for the input; an entry
    that compiles as an expression is compared with the input, `(input) == (entry)`; any
    other entry is appended to the input expression (`amount` + `<= 20`).
    """
    ns = {"dmn": _dmn_namespace(root)}
    issues = []

    def add(node: etree._Element, label: str, messages: Iterable[str]) -> None:
        entry = node.getparent() if node.getparent() is not None else node
        issues.extend(Issue(name, node.sourceline, _nearest_id(entry), f"{label}: {message}")
                      for message in messages)

    for table in root.xpath("//dmn:decisionTable", namespaces=ns):
        inputs = []
        for node in table.xpath("dmn:input", namespaces=ns):
            texts = node.xpath("dmn:inputExpression/dmn:text", namespaces=ns)
            inputs.append(texts[0].text if texts else None)
            if texts and _text(texts[0]):
                add(texts[0], "Input expression", _check_source(texts[0].text, "eval"))
        for rule in table.xpath("dmn:rule", namespaces=ns):
            label = f"rule {rule.get('id') or '?'}"
            for index, entry in enumerate(rule.xpath("dmn:inputEntry", namespaces=ns)):
                given = inputs[index] if index < len(inputs) else None
                for text in entry.xpath("dmn:text", namespaces=ns):
                    add(text, f"Input entry of {label}", _input_entry_errors(text.text, given))
            for text in rule.xpath("dmn:outputEntry/dmn:text", namespaces=ns):
                if text.text:
                    add(text, f"Output entry of {label}", _check_source(text.text, "eval"))
    return issues


def _input_entry_errors(entry: str | None, given: str | None) -> list[str]:
    """Problems of one input entry; `given` is its column's input expression (if any)."""
    if not entry or entry == "-" or not entry.strip():
        return []
    marked = _mark_input_placeholders(entry)
    if "dmninputexpr" in marked:
        return _check_source(marked, "eval")
    if not _check_source(entry, "exec"):  # DMNEngine.needs_eq: `(input) == (entry)`
        return _check_source(entry, "eval")
    if _check_source(f"v {entry}", "exec"):  # neither an expression nor a comparison
        return _check_source(entry, "eval") or _check_source(f"v {entry}", "eval")
    if not given or not given.strip():  # the input is the value of the column's label
        return _check_source(f"v {entry}", "eval")
    joined = given + entry  # what DMNEngine evaluates: no space is added
    if re.search(r"\w\Z", given) and re.match(r"\w", entry):
        return [f"{entry!r} is appended to the input expression as {joined!r}; start the "
                f"entry with a space or write it with ? for the input ('? {entry}')"]
    return _check_source(joined, "eval")


def _mark_input_placeholders(entry: str) -> str:
    """DMNEngine's `?` → `dmninputexpr` for each `?` followed by an even number of quotes.

    Same result as its regular expression, computed in one pass from the end (the regular
    expression takes quadratic time on many `?`).
    """
    chars, quotes = list(entry), 0
    for index in range(len(chars) - 1, -1, -1):
        if chars[index] in "'\"":
            quotes += 1
        elif chars[index] == "?" and quotes % 2 == 0:
            chars[index] = "dmninputexpr"
    return "".join(chars)
