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
        return _schema_issues(name, root, _dmn_namespace(root))
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
    locate = _locator(root) if errors else None
    return [Issue(name, e.line, locate(e.line), _schema_message(e.message)) for e in errors]


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


BPMN_CHECKS: tuple[Callable[[_Context], Iterable[Issue]], ...] = (
    _check_executable,
    _check_timers,
    _check_scripts,
    _check_forms,
    _check_connectors,
    _check_gateways,
)
