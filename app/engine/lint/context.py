"""The file being linted and the XML helpers every check uses: namespaces, XPath, the ids
that locate an issue."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from ..compiler import Issue

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
CONTAINERS = {f"{{{BPMN_NS}}}{name}" for name in
              ("process", "subProcess", "transaction", "adHocSubProcess")}


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


def _dmn_namespace(root: etree._Element) -> str:
    return etree.QName(root).namespace or ""
