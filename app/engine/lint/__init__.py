"""Pre-deploy lint of BPMN/DMN models: every problem located by file, line and element id.

The same checks back `clientconnect lint PATH...` and the 422 body of a refused deploy.
An issue's `line` is the line of the XML element that holds the problem (for a script,
its <script> element); `element_id` names the flow element a designer would select (the
task, event, gateway or sequence flow), or for schema errors the nearest element with an id.

The checks: `schema` (XSD validation), `expressions` (scripts, conditions, timers and other
expressions compile in the sandbox), `structure` (executable process, forms, connectors,
gateways) and `dmn` (decision tables); `context` holds the XML helpers they share.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from ..compiler import Issue
from ..xmlsafe import XmlRejected, parse_xml
from .context import _Context, _dmn_namespace
from .dmn import _dmn_issues
from .expressions import (
    _check_expressions,
    _check_scripts,
    _check_service_parameters,
    _check_task_properties,
    _check_timers,
)
from .schema import _for_schema, _schema_issues
from .structure import _check_connectors, _check_executable, _check_forms, _check_gateways


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
