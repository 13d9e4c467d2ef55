"""XML schema validation of BPMN and DMN files against the XSDs SpiffWorkflow ships."""

from __future__ import annotations

import bisect
import copy
import functools
import re
import threading
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from ..compiler import Issue
from .context import BPMN_NS, SPIFF_NS, _nearest_id, _xp

XSD_NS = "http://www.w3.org/2001/XMLSchema"
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
MAX_SCHEMA_ERRORS = 50

_SCHEMA_LOCK = threading.Lock()


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
