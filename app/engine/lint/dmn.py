"""Checks of DMN decision tables: input expressions, input entries and output entries."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml import etree

from ..compiler import Issue
from .context import _dmn_namespace, _nearest_id, _text
from .expressions import _check_source


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
